"""The HTTP API: one router per area, one error map, and the resolvers each function serves."""
