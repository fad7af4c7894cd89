"""How the project runs, apart from what it does: settings helpers read from the environment
(``env``), database connections for the hot path (``db``), the embedded PostgreSQL and Redis
for a machine with neither (``embedded``), the supervisor behind ``manage.py serve``
(``supervisor``), the console's log levels (``console``), middleware, health probes, static
files, error pages, Celery beat's heartbeat (``beat``), the wake-ups ingest sends the workers
(``wakeup``) and the admin's shared building blocks (``admin_base``). Nothing here imports a
domain package, except ``wakeup``, which names the tasks it wakes."""
