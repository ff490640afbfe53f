// Validation of the one cursor an Invoke names: every rule that turns a bad cursor into
// INVALID_ARGUMENT naming the field, and file:// paths held to the data roots.
#pragma once

#include <optional>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "eofaas/v1/cursor.pb.h"
#include "proxy/plan/checked_files.h"
#include "proxy/plan/data_roots.h"

namespace eofaas::proxy {

/// Checks `cursor` as given to Invoke; `field` prefixes the field names ("cursor.offset").
/// INVALID_ARGUMENT for: an empty or malformed uri (see ParseDataUri), a raw '?' in a file URI
/// (it would read as a query; encode it as %3F), an s3 URI without a key, a negative offset,
/// length, part, parts or size, offset + length overflowing int64, an unknown framing, a file
/// path that is not a regular file. For file URIs the path is resolved inside `roots` (lstat and
/// readlink only, never outside the roots): PERMISSION_DENIED when it leads outside every root,
/// NOT_FOUND when it does not exist. http(s) and s3 objects are not contacted. The cursor is
/// passed on unchanged when valid. With `checked`, a file URI that passed lately is taken
/// without parsing or resolving it again, and one that passes now is remembered. Thread-safe.
absl::Status ValidateCursor(const eofaas::v1::DataCursor& cursor, const DataRoots& roots,
                            CheckedFiles* checked = nullptr, absl::string_view field = "cursor");

/// ValidateCursor for a thread that must not wait (an event loop): nullopt when a file path leads
/// onto a file system where lstat may wait for a server (DataRoots::ResolveWithoutBlocking);
/// ValidateCursor on a worker thread then.
std::optional<absl::Status> ValidateCursorWithoutBlocking(const eofaas::v1::DataCursor& cursor,
                                                          const DataRoots& roots,
                                                          CheckedFiles* checked = nullptr,
                                                          absl::string_view field = "cursor");

}  // namespace eofaas::proxy
