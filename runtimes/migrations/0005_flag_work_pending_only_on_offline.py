from django.db import migrations

# The trigger of 0004 ran its function on every heartbeat (they all set `status`); the WHEN
# clause is checked without calling it, so only a move to offline pays for the call.
FLAG_ONLY_ON_OFFLINE = """
DROP TRIGGER agent_runtime_flag_work_pending ON agent_runtime;
CREATE TRIGGER agent_runtime_flag_work_pending
BEFORE UPDATE OF status ON agent_runtime
FOR EACH ROW WHEN (NEW.status = 'offline' AND OLD.status IS DISTINCT FROM 'offline')
EXECUTE FUNCTION agent_runtime_flag_work_pending();
"""

FLAG_ON_EVERY_STATUS_UPDATE = """
DROP TRIGGER agent_runtime_flag_work_pending ON agent_runtime;
CREATE TRIGGER agent_runtime_flag_work_pending
BEFORE UPDATE OF status ON agent_runtime
FOR EACH ROW EXECUTE FUNCTION agent_runtime_flag_work_pending();
"""


class Migration(migrations.Migration):
    dependencies = [("runtimes", "0004_work_pending_trigger")]

    operations = [migrations.RunSQL(FLAG_ONLY_ON_OFFLINE, reverse_sql=FLAG_ON_EVERY_STATUS_UPDATE)]
