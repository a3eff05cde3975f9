"""What an exclusion rule's name may be (trueup.domain.review): letters, digits and a little
punctuation, 1 to 100 characters, no space at either end. It is a path segment of the API and a
column of the audit log. Here on its own so that describing the API loads nothing else."""

RULE_NAME_PATTERN = r"^\w([\w .()&+,'-]{0,98}[\w)])?$"  # \w: ASCII, as JSON Schema reads it
