// The objects a plan covers, held once and compactly: a directory of a million files costs one
// record (24 bytes) plus its encoded name and etag per file, the directory's URI prefix once.
// Storage grows in fixed blocks, so a large listing is never copied to grow (no transient 2x).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace eofaas::proxy {

/// One object as a Lister reports it.
struct ListedObject {
  std::string uri;
  /// Unknown for an HTTP object without Content-Length.
  std::optional<int64_t> size;
  /// file: "<mtime ns>-<size>" in hex; http: the ETag header verbatim; empty when unknown.
  std::string etag;
  /// Byte ranges can be read (always for files; `Accept-Ranges: bytes` for HTTP).
  bool ranges_supported = false;
};

/// A view of one object of an ObjectList, valid until the list changes.
struct ObjectView {
  absl::string_view prefix;
  absl::string_view name;
  absl::string_view etag;
  std::optional<int64_t> size;
  bool ranges_supported = false;

  std::string uri() const;
};

/// Append-only (plus an in-place sort of its tail). Not thread-safe; movable.
class ObjectList {
 public:
  /// ETags longer than this are not kept (the object's etag is then empty).
  static constexpr size_t kMaxEtagBytes = 255;

  /// Registers a URI prefix shared by many objects (a directory's "file:///data/a/") and returns
  /// its handle for Append.
  uint32_t AddPrefix(std::string prefix);

  /// Appends an object whose URI is the prefix's text followed by `name` (at most 65535 bytes;
  /// listers give at most kMaxUriBytes).
  void Append(uint32_t prefix, absl::string_view name, std::optional<int64_t> size,
              absl::string_view etag, bool ranges_supported);

  /// Appends an object on its own; its URI is split after the last '/' into prefix and name.
  void Append(const ListedObject& object);

  size_t size() const { return records_.size(); }
  bool empty() const { return records_.empty(); }
  ObjectView operator[](size_t index) const;

  /// Sorts the objects from `begin` to the end by URI (byte order).
  void SortFrom(size_t begin);

  /// Gives back the spare capacity that growth left behind.
  void ShrinkToFit();

 private:
  /// Names and etags are stored in blocks of this size (a longer entry gets a block of its own).
  static constexpr size_t kBlockBytes = 64 << 10;

  struct Record {
    uint64_t text;  // block << 16 | offset of the name in the block; the etag follows it
    int64_t size;   // -1 when unknown
    uint32_t prefix;
    uint16_t name_size;
    uint8_t etag_size;
    bool ranges_supported;
  };
  static_assert(sizeof(Record) == 24);

  absl::string_view Text(const Record& record) const;

  std::vector<std::string> prefixes_;
  std::vector<std::string> blocks_;  // each reserved once, never reallocated
  std::deque<Record> records_;
};

}  // namespace eofaas::proxy
