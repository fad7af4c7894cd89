"""Forwarding: stored events to destinations, at least once. ``fanout`` puts new events on
each destination's ledger (``ledger``, ``sql``), ``delivery`` claims a batch, builds the
request for the destination's kind (``kinds``), sends it (``http``, after ``ssrf``) and
records the attempt; ``retry`` classifies answers and schedules the next attempt;
``destinations`` holds the services that create, pause and resume destinations;
``replay`` and ``replay_jobs`` send stored events again; ``probe`` sends a test event;
``health`` summarises each destination for the operator; ``admin`` is the operator's view."""
