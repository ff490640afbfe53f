// The body of POST /invoke, the only thing a replica receives:
// {"id","cursor","args","deadline_ms","attempt"}. The cursor is written by hand in its proto3 JSON
// form because this runs once per cursor of a Map (the hot path); tests hold it equal to
// google::protobuf::util::MessageToJsonString.
#pragma once

#include <google/protobuf/struct.pb.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "eofaas/v1/cursor.pb.h"

namespace eofaas::proxy {

/// Appends `text` as a JSON string literal (quotes included) to `out`, escaped as protobuf's JSON
/// printer escapes it.
void AppendJsonString(std::string_view text, std::string& out);

/// Appends the proto3 JSON form of `cursor` to `out`: no whitespace, default values omitted,
/// int64 as strings, enums by name (what MessageToJsonString prints with default options).
void AppendCursorJson(const eofaas::v1::DataCursor& cursor, std::string& out);

/// The proto3 JSON form of `args` ("{}" when empty), computed once per Invoke or Map.
/// INVALID_ARGUMENT naming `args` when protobuf cannot print it.
absl::StatusOr<std::string> ArgsJson(const google::protobuf::Struct& args);

/// The part of an /invoke body that is the same for every attempt:
/// `{"id":<id>,"cursor":<cursor>,"args":<args_json>`. `args_json` must be a JSON object, as
/// ArgsJson returns it.
std::string InvokeBodyPrefix(std::string_view id, const eofaas::v1::DataCursor& cursor,
                             std::string_view args_json);

/// Replaces `out` with the rest of the body for one attempt: `,"deadline_ms":N,"attempt":N}`
/// (`deadline_ms`: the budget left, counted by the replica from the request's arrival; `attempt`:
/// 1 for the first).
void WriteInvokeBodySuffix(int64_t deadline_ms, int attempt, std::string& out);

}  // namespace eofaas::proxy
