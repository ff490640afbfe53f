// HttpLister: sizes an http(s):// input with one HEAD request (libcurl), never a GET.
#pragma once

#include <string>

#include "absl/time/time.h"
#include "proxy/plan/lister.h"

namespace eofaas::proxy {

struct HttpListerOptions {
  /// Bounds each HEAD request, connection included.
  absl::Duration timeout = absl::Seconds(10);
  /// PEM file of the certificate authorities an https:// server's certificate is checked
  /// against; empty: the system's (Debian's ca-certificates).
  std::string ca_file;
};

/// Each input is one object. Its size is the Content-Length (unknown without one), its etag the
/// ETag header, and ranges are supported when the answer says `Accept-Ranges: bytes`. Redirects
/// (at most 5, http and https only) are followed; the object keeps the URI as given.
/// Errors name the field: NOT_FOUND for 404 and 410, PERMISSION_DENIED for 401 and 403,
/// UNAVAILABLE for 429, 5xx and connection failures, DEADLINE_EXCEEDED when the timeout passes,
/// FAILED_PRECONDITION for any other non-2xx status and for a certificate that does not check out
/// (asking again would not help). Thread-safe: each List uses its own handle.
class HttpLister final : public Lister {
 public:
  explicit HttpLister(HttpListerOptions options = {});

  absl::Status List(const DataUri& input, absl::string_view field, ObjectList& out) const override;

 private:
  HttpListerOptions options_;
};

}  // namespace eofaas::proxy
