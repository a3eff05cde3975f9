"""Where data lives: S3 objects (generations, snapshot rows) and DynamoDB items. The only code that knows."""
