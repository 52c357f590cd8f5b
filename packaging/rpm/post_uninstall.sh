# %postun of the kafka-mirrord rpm ($1: 0 = erase, 1 = upgrade). Like %systemd_postun_with_restart:
# on upgrade restart the service only if it is running (the kept config is re-checked by
# ExecStartPre). On erase: remove the state directory (a cache; progress lives in Kafka) and
# /etc/kafka-mirrord if nothing is left in it. Kept on erase: modified config files (*.rpmsave),
# files the admin added (keytabs, certificates), and the kafka-mirrord user, as Fedora/RHEL
# guidelines require.
if [ "$1" -eq 0 ]; then
  rm -rf /var/lib/kafka-mirrord
  rmdir /etc/kafka-mirrord 2>/dev/null || :
fi
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload >/dev/null 2>&1 || :
  if [ "$1" -ge 1 ]; then
    systemctl try-restart kafka-mirrord.service >/dev/null 2>&1 || :
  fi
fi
exit 0
