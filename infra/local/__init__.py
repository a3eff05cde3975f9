"""What runs trueup on one machine without an AWS account."""
