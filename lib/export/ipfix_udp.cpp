#include "export/ipfix_udp.h"

#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "ipfix/ipfix.h"

namespace weir::exporter {

IpfixUdpExporter::IpfixUdpExporter(const config::Exporter& ex, const config::Config& cfg)
    : url_(ex.url),
      refresh_s_(cfg.template_refresh_s),
      refresh_messages_(cfg.template_refresh_messages),
      buf_(cfg.mtu - 48) {  // room for IPv6 + UDP headers
    addrinfo hints{};
    hints.ai_socktype = SOCK_DGRAM;
    hints.ai_flags = AI_NUMERICSERV;
    addrinfo* res = nullptr;
    const std::string port = std::to_string(ex.port);
    if (int rc = getaddrinfo(ex.host.c_str(), port.c_str(), &hints, &res); rc != 0)
        throw std::runtime_error(url_ + ": cannot resolve " + ex.host + ": " + gai_strerror(rc));
    std::string why;
    for (addrinfo* a = res; a; a = a->ai_next) {
        const int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) {
            why = std::strerror(errno);
            continue;
        }
        // connect() so the kernel reports an unreachable collector (ICMP port unreachable) as a
        // send error we can count, instead of silence.
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
            fd_ = fd;
            break;
        }
        why = std::strerror(errno);
        close(fd);
    }
    freeaddrinfo(res);
    if (fd_ < 0) throw std::runtime_error(url_ + ": " + why);
    const int sndbuf = 8 << 20;
    setsockopt(fd_, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
}

IpfixUdpExporter::~IpfixUdpExporter() {
    if (fd_ >= 0) close(fd_);
}

bool IpfixUdpExporter::send(const uint8_t* p, size_t n) {
    const ssize_t rc = ::send(fd_, p, n, 0);
    if (rc == static_cast<ssize_t>(n)) {
        stats_.bytes.add(n);
        return true;
    }
    // ECONNREFUSED: an earlier datagram drew ICMP port unreachable; this call sent nothing.
    // Either way this message is lost and counted; the next one is tried normally.
    last_errno_ = rc < 0 ? errno : EMSGSIZE;
    stats_.send_errors.add();
    return false;
}

void IpfixUdpExporter::send_templates(uint32_t domain, Domain& d, uint32_t now_s) {
    uint8_t buf[512];
    const size_t set = ipfix::write_template_set(buf + ipfix::kHeaderLen, sizeof(buf) - ipfix::kHeaderLen);
    const auto len = static_cast<uint16_t>(ipfix::kHeaderLen + set);
    ipfix::write_header(buf, len, now_s, d.sequence, domain);
    if (send(buf, len)) {
        stats_.template_messages.add();
        d.templates_sent = true;
        d.last_template_s = now_s;
        d.since_template = 0;
    }
}

void IpfixUdpExporter::send_message(uint32_t domain, ipfix::MessageEncoder& enc, uint32_t now_s) {
    Domain& d = domains_[domain];
    if (!d.templates_sent || now_s - d.last_template_s >= refresh_s_ || d.since_template >= refresh_messages_)
        send_templates(domain, d, now_s);
    const uint32_t records = enc.records();
    const uint64_t packets = enc.packets();
    const uint32_t len = enc.finish();
    ipfix::set_header_fields(buf_.data(), now_s, d.sequence);
    if (send(buf_.data(), len)) {
        d.sequence += records;
        d.since_template += 1;
        stats_.messages.add();
        stats_.records.add(records);
        stats_.packets.add(packets);
    } else {
        stats_.lost_records.add(records);
        stats_.lost_packets.add(packets);
    }
}

void IpfixUdpExporter::send_records(const flow::FlowRecord* records, uint32_t count, uint32_t domain, uint32_t now_s) {
    ipfix::MessageEncoder enc(domain, static_cast<uint32_t>(buf_.size()));
    enc.start(buf_.data());
    for (uint32_t i = 0; i < count; ++i) {
        if (enc.add(records[i])) continue;
        send_message(domain, enc, now_s);
        enc.start(buf_.data());
        enc.add(records[i]);  // always fits an empty message
    }
    if (enc.records()) send_message(domain, enc, now_s);
}

}  // namespace weir::exporter
