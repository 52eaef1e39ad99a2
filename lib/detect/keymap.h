// SPDX-License-Identifier: BSD-3-Clause
// The control side's tables of detection (detector.cpp): keys of up to 39 bytes (a source and
// probe kind, a source and destination, a destination) held inline with their values in chunks
// of 2 MiB, found through an index (open addressing, linear probing over a byte per slot: empty,
// erased, or seven bits of the key's hash, so a probe reads few keys). No allocation per key (the
// node, key string and value buffers of a std::unordered_map<std::string, ...>); clear() keeps
// the memory for the next use, as new memory costs a page fault per page. Erasing leaves a
// tombstone in the index and the entry's place for the next key; growing rebuilds the index only.
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include "detect/hll.h"

namespace weir::detect {

// Bytes zero-padded to 39, their number in the last byte: keys of different lengths differ.
struct Key {
    static constexpr unsigned kMax = 39;
    uint64_t w[5] = {};

    uint8_t size() const noexcept { return bytes()[kMax]; }
    const uint8_t* bytes() const noexcept { return reinterpret_cast<const uint8_t*>(w); }
    // Appends n bytes (false, and nothing appended, past kMax).
    bool append(const void* p, unsigned n) noexcept {
        auto* b = reinterpret_cast<uint8_t*>(w);
        if (b[kMax] + n > kMax) return false;
        std::memcpy(b + b[kMax], p, n);
        b[kMax] = static_cast<uint8_t>(b[kMax] + n);
        return true;
    }
    bool push(uint8_t c) noexcept { return append(&c, 1); }
    std::string str() const { return std::string(reinterpret_cast<const char*>(w), size()); }
    uint64_t hash() const noexcept {
        uint64_t h = 0x243F6A8885A308D3ull;
        for (uint64_t x : w) h = mix64(h ^ x);
        return h;
    }
    bool operator==(const Key& o) const noexcept {
        return w[0] == o.w[0] && w[1] == o.w[1] && w[2] == o.w[2] && w[3] == o.w[3] && w[4] == o.w[4];
    }
};

template <class V>
class KeyMap {
public:
    KeyMap() = default;
    KeyMap(const KeyMap&) = delete;
    KeyMap& operator=(const KeyMap&) = delete;
    KeyMap(KeyMap&& o) noexcept { take(o); }
    KeyMap& operator=(KeyMap&& o) noexcept {
        if (this != &o) {
            release();
            take(o);
        }
        return *this;
    }
    ~KeyMap() { release(); }

    size_t size() const noexcept { return size_; }
    bool empty() const noexcept { return size_ == 0; }

    V* find(const Key& k) noexcept {
        const size_t i = slot_of(k, k.hash());
        return i == SIZE_MAX ? nullptr : &at(ids_[i]).val;
    }
    // The value of k, or a new default one (`created` set).
    V& get(const Key& k, bool& created) {
        if ((used_ + 1) * 4 > cap_ * 3) grow();
        const uint64_t h = k.hash();
        const uint8_t t = tag(h);
        size_t tomb = SIZE_MAX;
        size_t i = h & (cap_ - 1);
        for (;; i = (i + 1) & (cap_ - 1)) {
            if (tags_[i] == kEmpty) break;
            if (tags_[i] == t && at(ids_[i]).key == k) {
                created = false;
                return at(ids_[i]).val;
            }
            if (tags_[i] == kTomb && tomb == SIZE_MAX) tomb = i;
        }
        if (tomb != SIZE_MAX)
            i = tomb;
        else
            ++used_;
        uint32_t id;
        if (!free_.empty()) {
            id = free_.back();
            free_.pop_back();
        } else {
            if (next_ == chunks_.size() * kPerChunk) add_chunk();
            id = next_++;
        }
        Entry& e = at(id);
        ::new (&e.val) V{};
        e.key = k;
        e.live = true;
        ids_[i] = id;
        tags_[i] = t;
        ++size_;
        created = true;
        return e.val;
    }
    V& operator[](const Key& k) {
        bool created;
        return get(k, created);
    }
    // fn(const Key&, V&) for every entry, oldest first (a free place is taken again first).
    template <class Fn>
    void each(Fn&& fn) {
        for (uint32_t id = 0; id < next_; ++id) {
            Entry& e = at(id);
            if (e.live) fn(e.key, e.val);
        }
    }
    // Erases the entries `pred(const Key&, V&)` is true of.
    template <class Pred>
    void erase_if(Pred&& pred) {
        for (uint32_t id = 0; id < next_; ++id) {
            Entry& e = at(id);
            if (!e.live || !pred(e.key, e.val)) continue;
            tags_[slot_of(e.key, e.key.hash())] = kTomb;
            e.val.~V();
            e.live = false;
            free_.push_back(id);
            --size_;
        }
    }
    // Empties the table; its memory stays for the next use.
    void clear() noexcept {
        for (uint32_t id = 0; id < next_; ++id) {
            Entry& e = at(id);
            if (e.live) e.val.~V(), e.live = false;
        }
        if (cap_) std::memset(tags_.get(), kEmpty, cap_);
        next_ = 0;
        free_.clear();
        size_ = used_ = 0;
    }

private:
    struct Entry {
        V val;
        Key key;
        bool live;
    };
    // Entries live in chunks of 2 MiB (transparent huge pages where the system gives them): they
    // never move, and a growing table takes new memory a chunk at a time.
    static constexpr size_t kChunkBytes = size_t{2} << 20;
    static constexpr uint32_t kPerChunk = static_cast<uint32_t>(kChunkBytes / sizeof(Entry));
    static_assert(kPerChunk > 0);
    enum : uint8_t { kEmpty = 0, kTomb = 1, kFull = 0x80 };  // a full slot: kFull and 7 bits of hash
    static uint8_t tag(uint64_t h) noexcept { return static_cast<uint8_t>(kFull | (h >> 57)); }

    Entry& at(uint32_t id) noexcept { return chunks_[id / kPerChunk][id % kPerChunk]; }
    size_t slot_of(const Key& k, uint64_t h) noexcept {
        if (!cap_) return SIZE_MAX;
        const uint8_t t = tag(h);
        for (size_t i = h & (cap_ - 1);; i = (i + 1) & (cap_ - 1)) {
            if (tags_[i] == kEmpty) return SIZE_MAX;
            if (tags_[i] == t && at(ids_[i]).key == k) return i;
        }
    }
    void add_chunk() {
        void* m = std::aligned_alloc(kChunkBytes, kChunkBytes);
        if (!m) throw std::bad_alloc();
        madvise(m, kChunkBytes, MADV_HUGEPAGE);  // a hint: fewer page faults and TLB misses
        chunks_.push_back(static_cast<Entry*>(m));
    }
    void take(KeyMap& o) noexcept {
        chunks_ = std::move(o.chunks_);
        free_ = std::move(o.free_);
        ids_ = std::move(o.ids_);
        tags_ = std::move(o.tags_);
        next_ = o.next_;
        cap_ = o.cap_;
        size_ = o.size_;
        used_ = o.used_;
        o.chunks_.clear();
        o.next_ = 0;
        o.cap_ = o.size_ = o.used_ = 0;
    }
    void release() noexcept {
        clear();
        for (Entry* c : chunks_) std::free(c);
        chunks_.clear();
        ids_.reset();
        tags_.reset();
        cap_ = 0;
    }
    // An index with room for twice the entries (at least 64 slots), without tombstones.
    void grow() {
        size_t cap = 64;
        while (cap < (size_ + 1) * 2) cap <<= 1;
        std::unique_ptr<uint32_t[]> ids(new uint32_t[cap]);
        std::unique_ptr<uint8_t[]> tags(new uint8_t[cap]());
        for (size_t i = 0; i < cap_; ++i) {
            if (!(tags_[i] & kFull)) continue;
            size_t j = at(ids_[i]).key.hash() & (cap - 1);
            while (tags[j] != kEmpty) j = (j + 1) & (cap - 1);
            ids[j] = ids_[i];
            tags[j] = tags_[i];
        }
        ids_ = std::move(ids);
        tags_ = std::move(tags);
        cap_ = cap;
        used_ = size_;
    }

    std::vector<Entry*> chunks_;
    std::vector<uint32_t> free_;  // ids of erased entries
    uint32_t next_ = 0;           // ids below it have been used
    std::unique_ptr<uint32_t[]> ids_;
    std::unique_ptr<uint8_t[]> tags_;
    size_t cap_ = 0, size_ = 0;
    size_t used_ = 0;  // index slots full or erased: what a probe walks over
};

}  // namespace weir::detect
