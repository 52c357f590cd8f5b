# %preun of the kafka-mirrord rpm ($1: 0 = erase, 1 = upgrade). Like %systemd_preun: on erase, stop
# the service and remove its enable symlinks; on upgrade leave it running (%postun restarts it).
if [ "$1" -eq 0 ] && [ -d /run/systemd/system ]; then
  systemctl --no-reload disable --now kafka-mirrord.service >/dev/null 2>&1 || :
fi
exit 0
