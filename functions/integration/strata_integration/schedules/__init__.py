"""Scheduled goals: cron, rate or one-time schedules per tenant that submit a goal to L05 when EventBridge Scheduler
fires them (the local cloud emulates Scheduler), with pause, resume and a history of every firing."""
