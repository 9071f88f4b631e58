"""SageMaker Spend Tracker: what every SageMaker training job cost, and who owns it."""

__version__ = "0.1.0"
