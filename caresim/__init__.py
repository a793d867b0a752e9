"""caresim: discrete-event simulation of English children's social care and family justice."""
__version__ = "0.1.0"
