-- Flow records from weir's "clickhouse" exporter (INSERT ... FORMAT JSONEachRow).
-- One row per direction (mode "uniflow", the default) or per conversation with rev_* columns
-- (mode "biflow"). Works on ClickHouse 18.16 (Debian 12) and later; addresses are strings
-- because 18.16 has no IPv4/IPv6 column types. For a cluster of shards, run cluster.sql after
-- this file on every server. A table made by an earlier weir needs the
-- columns from cvlan to dst_mac, from application to dst_zone, from mpls_label to rev_sizes and probe added (ALTER TABLE weir.flows ADD COLUMN ...) before this one
-- inserts into it; until then the inserts fail, are retried and counted lost.
CREATE DATABASE IF NOT EXISTS weir;

CREATE TABLE IF NOT EXISTS weir.flows
(
    start DateTime,           -- first packet, UTC seconds
    end DateTime,             -- last packet
    start_ms UInt64,          -- the same in milliseconds since the epoch
    end_ms UInt64,
    src String,
    dst String,
    sport UInt16,
    dport UInt16,
    proto UInt8,
    icmp_type UInt8,
    icmp_code UInt8,
    vlan UInt16,
    packets UInt64,
    bytes UInt64,             -- IP-layer octets
    tcp_flags UInt8,
    tos UInt8,
    ttl_min UInt8,
    ttl_max UInt8,
    rev_packets UInt64 DEFAULT 0,   -- biflow only
    rev_bytes UInt64 DEFAULT 0,
    rev_tcp_flags UInt8 DEFAULT 0,
    cvlan UInt16 DEFAULT 0,           -- QinQ customer VLAN (dot1qCustomerVlanId)
    tunnel_type String DEFAULT '',    -- '' (not tunneled), vxlan, vxlan_gpe, geneve, gre, nvgre, erspan, gtpu, ipip, mpls, teredo, pim
    tunnel_id UInt32 DEFAULT 0,       -- VNI, GRE key, NVGRE VSID, ERSPAN session, bottom MPLS label
    tunnel_src String DEFAULT '',     -- the tunnel's end points in this row's direction
    tunnel_dst String DEFAULT '',
    tunnel_vlan UInt16 DEFAULT 0,     -- VLAN of the tunnel's own frames
    tunnel_depth UInt8 DEFAULT 0,     -- tunnels opened to reach src/dst
    outer_copy UInt8 DEFAULT 0,       -- 1: a tunnel's own flow (tunnels.mode "both"); its packets are also in tenant rows
    src_mac String DEFAULT '',        -- exporters with "macs": true
    dst_mac String DEFAULT '',
    application String DEFAULT '',      -- named by a payload rule ("inspect"); '' none
    tls_server_name String DEFAULT '',  -- from the client's TLS ClientHello (SNI)
    http_host String DEFAULT '',        -- from the client's HTTP/1.x request
    rule_ids Array(UInt32) DEFAULT [],  -- payload rules that tagged the flow (the first 6)
    tags Array(String) DEFAULT [],      -- ... and their tags
    src_zone String DEFAULT '',         -- the zone of src and of dst ("zones" in the configuration; "other":
    dst_zone String DEFAULT '',         -- in none); '' when weir has no zones
    -- Opt-in per exporter ("mpls", "direction", "rtt", "sizes"); NULL when not measured.
    mpls_label Nullable(UInt32) DEFAULT NULL,  -- top MPLS label of the flow's first frame
    mpls_tc Nullable(UInt8) DEFAULT NULL,      -- ... and its traffic class
    flow_direction Nullable(Enum8('ingress' = 0, 'egress' = 1)) DEFAULT NULL,  -- ports[].direction
    rtt_client_us Nullable(UInt32) DEFAULT NULL,  -- TCP handshake: SYN-ACK to the client's ACK
    rtt_server_us Nullable(UInt32) DEFAULT NULL,  -- ... and SYN to the server's SYN-ACK
    sizes Array(UInt32) DEFAULT [],      -- packets by IP length: <=64, 128, 256, 512, 1024, 1500, 9000, more
    rev_sizes Array(UInt32) DEFAULT [],  -- biflow: the responder's
    end_reason UInt8,         -- IPFIX flowEndReason: 1 idle, 2 active, 3 end of flow, 4 forced, 5 evicted
    in_port UInt16,
    domain UInt32,            -- observation domain = worker
    probe String DEFAULT ''   -- the probe's name ("probe" in its configuration; default its host name)
)
ENGINE = MergeTree
PARTITION BY toYYYYMMDD(start)
ORDER BY (start, src, dst)
SETTINGS index_granularity = 8192;
