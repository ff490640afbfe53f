// The Lister interface: turns one validated Map input into the objects it names, reading sizes
// and listings only (stat, HEAD, LIST), never data (where HEAD is refused, a GET's body is cut
// off at its first byte, unread). Implementations: FileLister (file://) and
// HttpLister (http://, https://).
#pragma once

#include <stop_token>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "proxy/plan/data_uri.h"
#include "proxy/plan/object_list.h"

namespace eofaas::proxy {

/// Thread-safe: one Lister serves every Map at once. List blocks on the file system or the
/// network, so call it off any event loop.
class Lister {
 public:
  virtual ~Lister() = default;

  /// Appends the objects `input` names to `out`, sorted by URI. `field` names the input in
  /// errors ("inputs[2]"). NOT_FOUND when the input names no object (a missing path, an empty
  /// directory, a glob that matches nothing). CANCELLED once `stop` is requested: a directory
  /// walk or glob checks it before each entry, an HTTP probe at least once a second. On error
  /// `out` may hold part of the listing; the caller discards it.
  virtual absl::Status List(const DataUri& input, absl::string_view field,
                            const std::stop_token& stop, ObjectList& out) const = 0;
};

}  // namespace eofaas::proxy
