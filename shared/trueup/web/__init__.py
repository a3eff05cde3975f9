"""The Reconciliation page: plain HTML, CSS and JavaScript shipped inside the package (no build step)."""
