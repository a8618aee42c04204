#!/bin/sh
# Run once by the official image when it creates the primary's cluster
# (/docker-entrypoint-initdb.d): lets the replica service stream from it.
set -e
echo "host replication all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
