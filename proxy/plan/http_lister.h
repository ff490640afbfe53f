// HttpLister: sizes an http(s):// input with a HEAD request (libcurl), or, where HEAD is refused,
// with a GET of the first byte that is cut off unread.
#pragma once

#include <string>

#include "absl/time/time.h"
#include "proxy/plan/lister.h"

namespace eofaas::proxy {

struct HttpListerOptions {
  /// Bounds each request, connection included.
  absl::Duration timeout = absl::Seconds(10);
  /// PEM file of the certificate authorities an https:// server's certificate is checked
  /// against; empty: the system's (Debian's ca-certificates).
  std::string ca_file;
};

/// Each input is one object. Its size is the HEAD's Content-Length (unknown without one), its etag
/// the ETag header, and ranges are supported when the answer says `Accept-Ranges: bytes`.
/// A store that refuses HEAD where GET is allowed (403, as S3 does for a URL presigned for GET;
/// 405; 501) is asked for its first byte instead (`Range: bytes=0-0`, the body cut off before it
/// is read): a 206 gives the size in Content-Range (a 416 with "bytes */0" an empty object), and
/// ranges are supported; a 200 ignored the range, so the size is its Content-Length, without
/// ranges. Redirects (at most 5, http and https only) are followed; the object keeps the URI as
/// given. Errors name the field and the request: NOT_FOUND for 404 and 410, PERMISSION_DENIED for
/// 401 and 403 (after both requests when HEAD was refused),
/// UNAVAILABLE for 429, 5xx and connection failures, DEADLINE_EXCEEDED when the timeout passes,
/// FAILED_PRECONDITION for any other non-2xx status and for a certificate that does not check out
/// (asking again would not help). Thread-safe: each List uses its own handle.
class HttpLister final : public Lister {
 public:
  explicit HttpLister(HttpListerOptions options = {});

  absl::Status List(const DataUri& input, absl::string_view field, const std::stop_token& stop,
                    ObjectList& out) const override;

 private:
  HttpListerOptions options_;
};

}  // namespace eofaas::proxy
