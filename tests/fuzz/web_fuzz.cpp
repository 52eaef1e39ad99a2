// SPDX-License-Identifier: BSD-3-Clause
// Web configuration fuzz target: the first byte picks what the rest is. Even: an Authorization
// header value from the network, checked by BasicAuth (base64, user:password, bcrypt), which
// must answer yes only for the one right pair. Odd: a web configuration file (YAML), which
// web::load must accept or refuse with WebConfigError naming the file; any other exception, or
// a crash, is a finding.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "web/web_config.h"

namespace {

// bcrypt of "pw" at cost 4 (the lowest), so a guess costs little.
const char* const kHash = "$2b$04$S6qcH/mgc4fa6Gn4iSDnoe7D4OKJaXmoVqmuIqu/rFXkU84Z/fQ/W";

std::string temp_path() {
    static std::string path = [] {
        char t[] = "/tmp/weir-web-fuzz-XXXXXX";
        const int fd = mkstemp(t);
        if (fd >= 0) close(fd);
        return std::string(t);
    }();
    return path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) return 0;
    const std::string rest(reinterpret_cast<const char*>(data) + 1, size - 1);
    if (data[0] % 2 == 0) {
        static weir::web::BasicAuth auth({{"alice", kHash}});
        std::string who;
        const bool ok = auth.allows(rest.c_str(), &who);
        std::string decoded;
        const std::string b64 = rest.size() > 6 ? rest.substr(6) : "";
        const bool right =
            rest.rfind("Basic ", 0) == 0 && weir::web::base64_decode(b64, decoded) && decoded == "alice:pw";
        if (ok && who != "alice") std::abort();
        if (ok && rest.find('\0') == std::string::npos && rest.find(' ', 6) == std::string::npos && !right)
            std::abort();
        return 0;
    }
    const std::string path = temp_path();
    FILE* f = std::fopen(path.c_str(), "w");
    if (!f) return 0;
    std::fwrite(rest.data(), 1, rest.size(), f);
    std::fclose(f);
    try {
        const weir::web::WebConfig w = weir::web::load(path);
        for (const auto& [user, hash] : w.users)
            if (user.empty() || hash.size() != 60) std::abort();
        if (w.tls && (w.tls_config.cert_file.empty() || w.tls_config.key_file.empty())) std::abort();
    } catch (const weir::web::WebConfigError& e) {
        if (std::string(e.what()).rfind(path + ": ", 0) != 0) std::abort();
    }
    return 0;
}
