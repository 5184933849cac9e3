#!/usr/bin/env bash
# System packages the tests need beyond PyPI, installed once and idempotently:
# iproute2 (`ip netns`: tests/e2e/test_slow_link.py puts master and agent in two network
# namespaces) and ethtool (tests/e2e/test_io7d_netns.py turns veth offloads off so its
# userspace frame relay forwards plain frames with correct checksums). Without root or apt-get it says so and carries on: that test then skips with
# its reason, and everything else runs.
set -u
need=()
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v ethtool >/dev/null 2>&1 || need+=(ethtool)
# issue 14: the browser test (headless Chromium driven by Selenium) and the MQTT test (a
# real mosquitto broker the test starts on a free loopback port)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "sysdeps: missing ${need[*]} (not root or no apt-get): the tests that need it skip" >&2
    exit 0
fi
apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null \
    || echo "sysdeps: could not install ${need[*]}: the tests that need it skip" >&2
exit 0
