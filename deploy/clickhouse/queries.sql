-- Example queries over weir.flows.

-- Top talkers by bytes sent in the last hour.
SELECT src, sum(bytes) AS bytes, sum(packets) AS packets, count() AS flows
FROM weir.flows
WHERE start >= now() - 3600
GROUP BY src
ORDER BY bytes DESC
LIMIT 20;

-- The flow matrix: source /24 (IPv4) x destination /24 x service, by bytes.
SELECT
    if(position(src, ':') > 0, src, concat(arrayStringConcat(arraySlice(splitByChar('.', src), 1, 3), '.'), '.0/24')) AS src_net,
    if(position(dst, ':') > 0, dst, concat(arrayStringConcat(arraySlice(splitByChar('.', dst), 1, 3), '.'), '.0/24')) AS dst_net,
    -- the service port: the lower of the two (the client's ephemeral port is the higher one)
    multiIf(proto = 6, concat('tcp/', toString(least(sport, dport))), proto = 17, concat('udp/', toString(least(sport, dport))),
            proto IN (1, 58), 'icmp', toString(proto)) AS service,
    sum(bytes) AS bytes,
    sum(packets) AS packets,
    count() AS flows
FROM weir.flows
WHERE start >= now() - 3600
GROUP BY src_net, dst_net, service
ORDER BY bytes DESC
LIMIT 50;

-- Flows per second and how they ended, per minute.
SELECT toStartOfMinute(end) AS minute, end_reason, count() / 60 AS flows_per_s
FROM weir.flows
GROUP BY minute, end_reason
ORDER BY minute, end_reason;

-- Tenants: the busiest overlay segments (VXLAN/Geneve VNI, NVGRE VSID, GRE key) in the last hour,
-- with their tunnel end points. Outer copies (mode "both") are left out: their packets are
-- already in the tenants' rows.
SELECT tunnel_type, tunnel_id AS vni, sum(bytes) AS bytes, sum(packets) AS packets, count() AS flows,
       uniqExact(tunnel_src) AS vteps
FROM weir.flows
WHERE start >= now() - 3600 AND tunnel_type != '' AND outer_copy = 0
GROUP BY tunnel_type, vni
ORDER BY bytes DESC
LIMIT 20;

-- Top applications in the last hour (payload inspection, "inspect" in the configuration), with
-- how many distinct servers were asked for by name.
SELECT if(application = '', '(unknown)', application) AS app, sum(bytes + rev_bytes) AS bytes, count() AS flows,
       uniqExact(if(tls_server_name != '', tls_server_name, http_host)) AS server_names
FROM weir.flows
WHERE start >= now() - 3600
GROUP BY app
ORDER BY bytes DESC
LIMIT 20;

-- Flows that matched a tagging rule in the last day, newest first.
SELECT start, src, sport, dst, dport, proto, application, tls_server_name, http_host, rule_ids, tags, packets, bytes
FROM weir.flows
WHERE start >= now() - 86400 AND notEmpty(rule_ids)
ORDER BY start DESC
LIMIT 100;

-- The flow matrix ("zones" in the configuration): who talks to whom, by service, in the last day.
-- One row per direction (uniflow): a conversation's client is the source of its first row.
SELECT src_zone, dst_zone, proto, if(proto IN (1, 58), icmp_type, dport) AS service, count() AS rows,
       sum(packets) AS packets, sum(bytes) AS bytes, uniqExact(src) AS sources
FROM weir.flows
WHERE start >= now() - 86400 AND src_zone != '' AND outer_copy = 0
GROUP BY src_zone, dst_zone, proto, service
ORDER BY bytes DESC
LIMIT 100;

-- TCP handshake times per service over the last hour (exporter "rtt": true): the network
-- towards the client and the server's own answer, median and 95th percentile in microseconds.
SELECT dst AS server, dport AS port, count() AS handshakes,
       quantiles(0.5, 0.95)(rtt_client_us) AS client_side_us,
       quantiles(0.5, 0.95)(rtt_server_us) AS server_side_us
FROM weir.flows
WHERE start >= now() - 3600 AND rtt_server_us IS NOT NULL AND rtt_client_us IS NOT NULL
GROUP BY server, port
ORDER BY handshakes DESC
LIMIT 20;

-- Packet sizes per input port over the last hour (exporter "sizes": true): what share of the
-- packets falls into each IP-length bin.
SELECT in_port, sumForEach(sizes) AS packets_per_bin,
       arrayMap(x -> round(x / arraySum(packets_per_bin), 3), packets_per_bin) AS share
FROM weir.flows
WHERE start >= now() - 3600 AND notEmpty(sizes)
GROUP BY in_port;
