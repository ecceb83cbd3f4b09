from django.db import migrations

# Going offline, by any path (the sweep, a deregister, an operator's UPDATE), flags the runtime
# for the sweep's safety net: no writer can forget it.
FLAG_ON_OFFLINE = """
CREATE FUNCTION agent_runtime_flag_work_pending() RETURNS trigger AS $$
BEGIN
    IF NEW.status = 'offline' AND OLD.status IS DISTINCT FROM 'offline' THEN
        NEW.work_pending := true;
    END IF;
    RETURN NEW;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER agent_runtime_flag_work_pending
BEFORE UPDATE OF status ON agent_runtime
FOR EACH ROW EXECUTE FUNCTION agent_runtime_flag_work_pending();
"""

DROP = """
DROP TRIGGER agent_runtime_flag_work_pending ON agent_runtime;
DROP FUNCTION agent_runtime_flag_work_pending();
"""


class Migration(migrations.Migration):
    dependencies = [("runtimes", "0003_runtime_work_pending")]

    operations = [migrations.RunSQL(FLAG_ON_OFFLINE, reverse_sql=DROP)]
