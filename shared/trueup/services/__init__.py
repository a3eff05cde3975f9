"""What the handlers call: one application service per area, talking to AWS only through trueup.store."""
