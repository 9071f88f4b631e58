"""The cost domain, pure: the cost-item catalogue (``items``), the price book (``prices``)
and the engine that turns a job record and its rates into an itemised cost (``engine``)."""
