"""The task states that mean live work. The runtimes app's statements ask whether a runtime or
an agent still has some, without importing the tasks app; the tasks app's partial indexes and
statements say the same list."""

from common.sql import sql_list

ACTIVE_TASK_STATUSES = ("dispatched", "running")
# For SQL: `status IN ('dispatched', 'running')`, as the partial indexes' predicates say it.
ACTIVE = sql_list(ACTIVE_TASK_STATUSES)
