// The Map planner: validates a Map's inputs and partitioning, lists the objects once (sizes only,
// never data), then hands out DataCursors one at a time, so a plan of a million cursors holds
// only its object list.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "eofaas/v1/cursor.pb.h"
#include "eofaas/v1/invoker.pb.h"
#include "proxy/plan/lister.h"
#include "proxy/plan/object_list.h"

namespace eofaas::proxy {

/// The listers a plan uses, by scheme. Not owned; null means the scheme cannot be listed
/// (UNIMPLEMENTED). s3:// inputs are always UNIMPLEMENTED for now: they parse and validate, but
/// listing buckets is not built yet (Invoke accepts s3:// cursors).
struct Listers {
  const Lister* file = nullptr;
  /// http:// and https://
  const Lister* http = nullptr;
};

/// How a plan cuts each object:
/// - whole objects (no split): one cursor per object, `length` = its size, or absent when the
///   size is unknown;
/// - `chunk_bytes` C: chunks [k*C, min((k+1)*C, size)), the last one shorter;
/// - `chunks_per_object` N: min(N, size) chunks whose lengths differ by at most one byte
///   (chunk k starts at floor(k*size/n)), so no chunk is empty.
/// An object of unknown size or without range support is never split: one whole-object cursor.
/// An empty object is one cursor of offset 0 and length 0 (the function still sees it).
/// Every cursor carries the partitioning's framing (FRAMING_UNSPECIFIED becomes FRAMING_NONE),
/// `part` and `parts` within its object, the object's `size` (0 when unknown) and `etag`.
///
/// Lifecycle: Create lists everything and computes the totals; Next then yields the cursors in
/// order (inputs in the order given, each input's objects sorted by URI, chunks by offset). An
/// object two inputs name is planned twice. Memory: the object list (about 70 bytes per file of
/// a directory, see ObjectList), never the cursors. Not thread-safe: one consumer calls Next.
class Planner {
 public:
  /// Validates, then lists each input with the lister of its scheme. INVALID_ARGUMENT naming the
  /// field for: no inputs, a malformed or unsupported URI (`inputs[2]: unsupported scheme
  /// "ftp"`), chunk_bytes or chunks_per_object not positive, an unknown framing, a plan whose
  /// item or byte count overflows int64. The listers' errors as they come (PERMISSION_DENIED
  /// outside the data roots, NOT_FOUND, ...). The http(s) inputs are sized first, up to 16 at
  /// once (each waits on the network), so the lister must be thread-safe; when one fails, the
  /// error is the first failed http(s) input's and no file:// input is walked. Then the other
  /// inputs are listed in order. Blocks on the file system and network; once `stop` is
  /// requested no further input is listed, the listings in progress end (see Lister::List), and
  /// the answer is CANCELLED.
  static absl::StatusOr<std::unique_ptr<Planner>> Create(
      const std::vector<std::string>& inputs, const eofaas::v1::Partitioning& partitioning,
      const Listers& listers, const std::stop_token& stop = {});

  /// The number of cursors Next will yield.
  int64_t items() const { return items_; }
  /// The bytes the plan covers: the sum of the objects' sizes (unknown sizes count 0).
  int64_t bytes() const { return bytes_; }

  /// The next cursor, or nullopt once all `items()` were handed out.
  std::optional<eofaas::v1::DataCursor> Next();

 private:
  enum class Split { kWhole, kChunkBytes, kChunksPerObject };

  Planner(ObjectList objects, Split split, int64_t split_value, eofaas::v1::Framing framing)
      : objects_(std::move(objects)), split_(split), split_value_(split_value), framing_(framing) {}

  /// The number of cursors `object` is cut into.
  int64_t PartsOf(const ObjectView& object) const;

  ObjectList objects_;
  Split split_;
  int64_t split_value_;
  eofaas::v1::Framing framing_;
  int64_t items_ = 0;
  int64_t bytes_ = 0;

  // Position of Next: the next object to load, then the current object's parts and next part.
  // Its URI, etag and size are kept so its chunks do not rebuild them.
  size_t object_ = 0;
  int64_t parts_ = 0;
  int64_t part_ = 0;
  std::string uri_;
  std::string etag_;
  std::optional<int64_t> size_;
};

}  // namespace eofaas::proxy
