-- A ClickHouse cluster of shards for many probes: run weir.sql and then this file on every
-- server of the cluster "weir" (remote_servers: see cluster.xml).
--
-- On each server the table weir.sql made becomes the shard's local table, weir.flows_local, and
-- weir.flows becomes a Distributed table over every shard's weir.flows_local. Queries (queries.sql
-- runs unchanged) read weir.flows on any server and see every probe's rows.
--
-- weir inserts straight into one shard's weir.flows_local (exporter "table": "weir.flows_local",
-- each probe pointed at a shard; spread the probes evenly), not through the Distributed table:
-- each row is written once (a Distributed insert is written on the receiving server and then sent
-- on), and weir itself sees every failed insert, retries it while the shard is unreachable and
-- counts what it loses, instead of a server's background queue doing so out of its sight.
-- Inserting through weir.flows also works (rows go to a shard at random).
RENAME TABLE weir.flows TO weir.flows_local;

CREATE TABLE IF NOT EXISTS weir.flows AS weir.flows_local
ENGINE = Distributed(weir, weir, flows_local, rand());
