#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# A small PKI for atrest's mutual TLS: a CA, server certificates for tefd and hcsed, and AE-ID client certificates.
#
#   examples/pki.sh DIR [AE-ID...]
#
# Creates, in DIR (made if missing), only what is not there yet, so running
# it twice changes nothing and adding an AE-ID later adds just that one:
#   ca.crt ca.key                 the CA (EC P-256, 10 years)
#   tefd.crt tefd.key             server certificate, SAN DNS:localhost IP:127.0.0.1
#   hcsed.crt hcsed.key           server certificate, same SANs
#   <AE-ID>.crt <AE-ID>.key       client certificate per AE-ID (default: Creader Cother)
# Client certificates name the AE-ID twice, as tefd and hcsed read it: the
# subject CN is the AE-ID itself, and the subjectAltName carries its full URI
# representation (TS-0003 10.1.1.5), oneM2M://$ATREST_PKI_DOMAIN/<AE-ID>.
# Environment: ATREST_PKI_DOMAIN (default atrest.example), ATREST_PKI_DAYS (3650).
set -euo pipefail

if [ $# -lt 1 ] || [ "$1" = -h ] || [ "$1" = --help ]; then
	sed -n '4,16p' "$0" | sed 's/^# \{0,1\}//'
	[ $# -ge 1 ] && exit 0
	exit 2
fi
command -v openssl >/dev/null || { echo "pki.sh: openssl is not installed (apt-get install openssl)" >&2; exit 1; }

dir=$1
shift
ids=("$@")
[ ${#ids[@]} -gt 0 ] || ids=(Creader Cother)
domain=${ATREST_PKI_DOMAIN:-atrest.example}
days=${ATREST_PKI_DAYS:-3650}

mkdir -p "$dir"
umask 077

# new_key FILE: an EC P-256 private key, unless FILE exists.
new_key() {
	[ -s "$1" ] || openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null
}

# issue NAME SUBJECT EXTENSIONS: NAME.crt signed by the CA, unless it exists.
issue() {
	local name=$1 subj=$2 ext=$3
	[ -s "$dir/$name.crt" ] && return 0
	new_key "$dir/$name.key"
	openssl req -new -key "$dir/$name.key" -subj "$subj" -out "$dir/$name.csr" 2>/dev/null
	printf '%s\n' "$ext" >"$dir/$name.ext"
	openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
		-set_serial "0x$(openssl rand -hex 16)" -days "$days" -sha256 \
		-extfile "$dir/$name.ext" -out "$dir/$name.crt" 2>/dev/null
	rm -f "$dir/$name.csr" "$dir/$name.ext"
	echo "pki: issued $dir/$name.crt ($subj)"
}

if [ ! -s "$dir/ca.crt" ]; then
	new_key "$dir/ca.key"
	openssl req -new -x509 -key "$dir/ca.key" -subj "/O=atrest/CN=atrest test CA" \
		-days "$days" -sha256 \
		-addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" \
		-addext "subjectKeyIdentifier=hash" \
		-out "$dir/ca.crt" 2>/dev/null
	echo "pki: created the CA $dir/ca.crt"
fi

server_ext="basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,IP:127.0.0.1"
for s in tefd hcsed; do
	issue "$s" "/O=atrest/CN=$s" "$server_ext"
done

for id in "${ids[@]}"; do
	case "$id" in
	'' | *[!A-Za-z0-9._-]*) echo "pki.sh: bad AE-ID '$id' (letters, digits, . _ - only)" >&2; exit 2 ;;
	ca | tefd | hcsed) echo "pki.sh: '$id' is reserved for the CA and servers" >&2; exit 2 ;;
	esac
	issue "$id" "/O=atrest/CN=$id" "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth
subjectAltName=URI:oneM2M://$domain/$id"
done

# Keys readable by their owner only; certificates by everyone.
chmod 0600 "$dir"/*.key
chmod 0644 "$dir"/*.crt
