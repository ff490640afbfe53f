#include "proxy/dispatch/envelope.h"

#include <google/protobuf/util/json_util.h>

#include <array>
#include <charconv>

#include "absl/strings/str_cat.h"

namespace eofaas::proxy {
namespace {

void AppendInt(int64_t value, std::string& out) {
  char digits[24];
  auto [end, error] = std::to_chars(digits, digits + sizeof(digits), value);
  out.append(digits, end);
}

// proto3 JSON writes int64 as a string.
void AppendInt64Field(std::string_view name, int64_t value, std::string& out) {
  out.append(",\"").append(name).append("\":\"");
  AppendInt(value, out);
  out.push_back('"');
}

// The bytes AppendJsonString escapes, like protobuf: control characters, quote, backslash, DEL,
// and '<' '>' (HTML safety). Other UTF-8 passes through, which JSON allows.
constexpr std::array<bool, 256> kEscaped = [] {
  std::array<bool, 256> escaped{};
  for (int c = 0; c < 0x20; ++c) escaped[c] = true;
  for (unsigned char c : {'"', '\\', '<', '>', '\x7f'}) escaped[c] = true;
  return escaped;
}();

}  // namespace

void AppendJsonString(std::string_view text, std::string& out) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  size_t plain = 0;  // start of the run of characters copied as they are
  for (size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (!kEscaped[c]) continue;
    out.append(text.data() + plain, i - plain);
    plain = i + 1;
    switch (c) {
      case '"':
        out.append("\\\"");
        break;
      case '\\':
        out.append("\\\\");
        break;
      case '\b':
        out.append("\\b");
        break;
      case '\f':
        out.append("\\f");
        break;
      case '\n':
        out.append("\\n");
        break;
      case '\r':
        out.append("\\r");
        break;
      case '\t':
        out.append("\\t");
        break;
      default:
        out.append("\\u00");
        out.push_back(kHex[c >> 4]);
        out.push_back(kHex[c & 0xf]);
    }
  }
  out.append(text.data() + plain, text.size() - plain);
  out.push_back('"');
}

void AppendCursorJson(const eofaas::v1::DataCursor& cursor, std::string& out) {
  // Every field is optional in proto3 JSON, so each one writes its own leading comma and the
  // first comma is replaced by the opening brace.
  const size_t start = out.size();
  if (!cursor.uri().empty()) {
    out.append(",\"uri\":");
    AppendJsonString(cursor.uri(), out);
  }
  if (cursor.offset() != 0) AppendInt64Field("offset", cursor.offset(), out);
  if (cursor.has_length()) AppendInt64Field("length", cursor.length(), out);
  if (cursor.framing() != eofaas::v1::FRAMING_UNSPECIFIED) {
    out.append(",\"framing\":");
    if (eofaas::v1::Framing_IsValid(cursor.framing())) {
      out.push_back('"');
      out.append(eofaas::v1::Framing_Name(cursor.framing()));
      out.push_back('"');
    } else {
      AppendInt(cursor.framing(), out);  // an unknown enum value is printed as its number
    }
  }
  if (cursor.part() != 0) AppendInt64Field("part", cursor.part(), out);
  if (cursor.parts() != 0) AppendInt64Field("parts", cursor.parts(), out);
  if (cursor.size() != 0) AppendInt64Field("size", cursor.size(), out);
  if (!cursor.etag().empty()) {
    out.append(",\"etag\":");
    AppendJsonString(cursor.etag(), out);
  }
  if (out.size() == start) {
    out.append("{}");
  } else {
    out[start] = '{';
    out.push_back('}');
  }
}

absl::StatusOr<std::string> ArgsJson(const google::protobuf::Struct& args) {
  std::string json;
  auto status = google::protobuf::util::MessageToJsonString(args, &json);
  if (!status.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("args: ", std::string(status.message())));
  }
  return json;
}

std::string InvokeBodyPrefix(std::string_view id, const eofaas::v1::DataCursor& cursor,
                             std::string_view args_json) {
  std::string body;
  body.reserve(64 + id.size() + cursor.uri().size() + cursor.etag().size() + args_json.size() +
               8 * 24);
  body.append("{\"id\":");
  AppendJsonString(id, body);
  body.append(",\"cursor\":");
  AppendCursorJson(cursor, body);
  body.append(",\"args\":");
  body.append(args_json);
  return body;
}

void WriteInvokeBodySuffix(int64_t deadline_ms, int attempt, std::string& out) {
  out.reserve(64);  // the longest suffix, so that it is allocated once
  out.assign(",\"deadline_ms\":");
  AppendInt(deadline_ms, out);
  out.append(",\"attempt\":");
  AppendInt(attempt, out);
  out.push_back('}');
}

}  // namespace eofaas::proxy
