// HttpLister: sizes an http(s):// input with one HEAD request (libcurl), never a GET.
#pragma once

#include "absl/time/time.h"
#include "proxy/plan/lister.h"

namespace eofaas::proxy {

/// Each input is one object. Its size is the Content-Length (unknown without one), its etag the
/// ETag header, and ranges are supported when the answer says `Accept-Ranges: bytes`. Redirects
/// (at most 5, http and https only) are followed; the object keeps the URI as given.
/// Errors name the field: NOT_FOUND for 404 and 410, PERMISSION_DENIED for 401 and 403,
/// UNAVAILABLE for 429, 5xx and connection failures, DEADLINE_EXCEEDED when `timeout` passes,
/// FAILED_PRECONDITION for any other non-2xx status. Thread-safe: each List uses its own handle.
class HttpLister final : public Lister {
 public:
  /// `timeout` bounds each HEAD request, connection included.
  explicit HttpLister(absl::Duration timeout = absl::Seconds(10));

  absl::Status List(const DataUri& input, absl::string_view field, ObjectList& out) const override;

 private:
  absl::Duration timeout_;
};

}  // namespace eofaas::proxy
