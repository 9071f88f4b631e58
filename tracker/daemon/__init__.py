"""The scheduled jobs and the daemon that runs them (``tracker daemon``, ``tracker run JOB``).

``tasks`` holds each job's body (one service call and a one-line outcome), ``runner`` runs a
job once and records it, ``scheduler`` is the daemon. The top-level ``jobs`` package is the
entry point for external schedulers (cron, a Kubernetes CronJob) and imports these.
"""
