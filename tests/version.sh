#!/bin/sh
# version.sh - the version is written once, in VERSION: the public header's
# REFSTORE_VERSION_MAJOR and REFSTORE_VERSION_MINOR and the generated
# refstore.pc must say the same.
B=${B:-build/release}
echo "1..3"
v=$(cat VERSION)
case "$v" in
*[!0-9.]* | .* | *. | *..* | "") ok=0 ;;
*.*.*.*) ok=0 ;;
*.*.*) ok=1 ;;
*) ok=0 ;;
esac
[ $ok = 1 ] && echo "ok 1 - VERSION is major.minor.patch ($v)" ||
	echo "not ok 1 - VERSION is not major.minor.patch: '$v'"
major=${v%%.*}
minor=${v#*.}
minor=${minor%%.*}
hmajor=$(sed -n 's/^#define REFSTORE_VERSION_MAJOR[ 	]*\([0-9][0-9]*\)[ 	]*$/\1/p' include/refstore.h)
hminor=$(sed -n 's/^#define REFSTORE_VERSION_MINOR[ 	]*\([0-9][0-9]*\)[ 	]*$/\1/p' include/refstore.h)
if [ "$hmajor.$hminor" = "$major.$minor" ]; then
	echo "ok 2 - include/refstore.h says $hmajor.$hminor, as VERSION"
else
	echo "not ok 2 - include/refstore.h says '$hmajor.$hminor', VERSION says $major.$minor"
fi
pcv=$(sed -n 's/^Version: //p' "$B/refstore.pc" 2>/dev/null)
if [ "$pcv" = "$v" ]; then
	echo "ok 3 - $B/refstore.pc says $pcv"
else
	echo "not ok 3 - $B/refstore.pc says '$pcv', VERSION says $v"
fi
