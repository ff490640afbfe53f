// Text from outside (compiler output, replica logs) made safe for proto3 string fields, which
// must hold valid UTF-8 or the message cannot be parsed back.
#pragma once

#include <string>

#include "absl/strings/string_view.h"

namespace eofaas::common {

/// `text` with every byte that is not part of a well-formed UTF-8 sequence replaced by U+FFFD.
std::string ValidUtf8(absl::string_view text);

}  // namespace eofaas::common
