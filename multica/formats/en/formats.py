# Every timestamp the admin shows, to the second and with its time zone: liveness is a matter
# of seconds, and operators compare these with logs written in UTC.
DATETIME_FORMAT = "Y-m-d H:i:s T"
SHORT_DATETIME_FORMAT = "Y-m-d H:i:s T"
