# %pre of the kafka-mirrord rpm ($1: 1 = install, 2 = upgrade). Creates the system user and group
# before the files are unpacked, so the properties file gets group kafka-mirrord (root:kafka-mirrord
# 0640). No login shell; home /var/lib/kafka-mirrord (created in %post).
getent group kafka-mirrord >/dev/null || groupadd -r kafka-mirrord
getent passwd kafka-mirrord >/dev/null || \
  useradd -r -g kafka-mirrord -d /var/lib/kafka-mirrord -M -s /sbin/nologin \
    -c "kafka-mirrord daemon" kafka-mirrord
exit 0
