# %post of the kafka-mirrord rpm ($1: 1 = install, 2 = upgrade). Like %systemd_post, minus the
# preset: the service is never enabled or started by the package (fill in the clusters first).
# The two directories are set up here because cargo-generate-rpm 0.21.1 cannot package empty
# directories: /etc/kafka-mirrord root:kafka-mirrord 0750 (secrets readable by the service only,
# set on first install; later changes by the admin are kept), /var/lib/kafka-mirrord (state).
if [ "$1" -eq 1 ]; then
  chgrp kafka-mirrord /etc/kafka-mirrord && chmod 0750 /etc/kafka-mirrord
fi
if [ ! -d /var/lib/kafka-mirrord ]; then
  install -d -o kafka-mirrord -g kafka-mirrord -m 0750 /var/lib/kafka-mirrord
fi
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload >/dev/null 2>&1 || :
fi
exit 0
