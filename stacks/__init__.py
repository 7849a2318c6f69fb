"""The platform's stacks (deploy units), each composing components from ``components/``."""
