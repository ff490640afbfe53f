#include "proxy/dispatch/envelope.h"

#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include <chrono>
#include <string>

namespace eofaas::proxy {
namespace {

using eofaas::v1::DataCursor;

std::string ProtobufJson(const google::protobuf::Message& message) {
  std::string json;
  EXPECT_TRUE(google::protobuf::util::MessageToJsonString(message, &json).ok());
  return json;
}

std::string HandJson(const DataCursor& cursor) {
  std::string json;
  AppendCursorJson(cursor, json);
  return json;
}

DataCursor FullCursor() {
  DataCursor cursor;
  cursor.set_uri("file:///data/a b/\"q\"\\<x>\t\n\x01\x7f.txt");
  cursor.set_offset(1234567890123);
  cursor.set_length(0);  // present although zero
  cursor.set_framing(eofaas::v1::FRAMING_LINES);
  cursor.set_part(3);
  cursor.set_parts(10);
  cursor.set_size(-1);
  cursor.set_etag("\"abc\"");
  return cursor;
}

TEST(EnvelopeTest, CursorJsonIsWhatProtobufPrints) {
  DataCursor empty;
  DataCursor uri_only;
  uri_only.set_uri("http://example.org/x?a=1&b=2");
  DataCursor unknown_framing = FullCursor();
  unknown_framing.set_framing(static_cast<eofaas::v1::Framing>(7));
  DataCursor no_length = FullCursor();
  no_length.clear_length();
  no_length.set_framing(eofaas::v1::FRAMING_NONE);
  for (const DataCursor& cursor : {empty, uri_only, FullCursor(), unknown_framing, no_length}) {
    EXPECT_EQ(HandJson(cursor), ProtobufJson(cursor)) << cursor.ShortDebugString();
  }
}

TEST(EnvelopeTest, NonAsciiCursorJsonParsesBackToTheSameCursor) {
  DataCursor cursor = FullCursor();
  cursor.set_uri("s3://bücket/日本/\u2028é");
  DataCursor parsed;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(HandJson(cursor), &parsed).ok());
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(cursor, parsed));
}

TEST(EnvelopeTest, BodyHasExactlyTheFiveFields) {
  google::protobuf::Struct args;
  (*args.mutable_fields())["threshold"].set_number_value(0.5);
  (*args.mutable_fields())["name"].set_string_value("x");
  auto args_json = ArgsJson(args);
  ASSERT_TRUE(args_json.ok());
  std::string suffix;
  WriteInvokeBodySuffix(2500, 2, suffix);
  const std::string body = InvokeBodyPrefix("map-1/7", FullCursor(), *args_json) + suffix;

  google::protobuf::Struct parsed;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(body, &parsed).ok()) << body;
  const auto& fields = parsed.fields();
  EXPECT_EQ(fields.size(), 5u);
  EXPECT_EQ(fields.at("id").string_value(), "map-1/7");
  EXPECT_EQ(fields.at("deadline_ms").number_value(), 2500);
  EXPECT_EQ(fields.at("attempt").number_value(), 2);
  EXPECT_EQ(fields.at("args").struct_value().fields().at("threshold").number_value(), 0.5);
  EXPECT_EQ(fields.at("cursor").struct_value().fields().at("framing").string_value(),
            "FRAMING_LINES");
  EXPECT_EQ(fields.at("cursor").struct_value().fields().at("offset").string_value(),
            "1234567890123");
}

TEST(EnvelopeTest, EmptyArgsAreAnEmptyObject) {
  auto args_json = ArgsJson(google::protobuf::Struct());
  ASSERT_TRUE(args_json.ok());
  EXPECT_EQ(*args_json, "{}");
}

// Not a pass/fail check: prints how much cheaper the hand-written form is on the Map hot path.
TEST(EnvelopeTest, HandWrittenCursorJsonCost) {
  DataCursor cursor;
  cursor.set_uri("file:///data/big/lines-000123.txt");
  cursor.set_offset(64 << 20);
  cursor.set_length(1 << 20);
  cursor.set_framing(eofaas::v1::FRAMING_LINES);
  cursor.set_part(64);
  cursor.set_parts(1000);
  cursor.set_size(1000 << 20);
  constexpr int kRounds = 100000;
  auto time = [&](auto&& write) {
    const auto start = std::chrono::steady_clock::now();
    size_t bytes = 0;
    for (int i = 0; i < kRounds; ++i) bytes += write().size();
    EXPECT_GT(bytes, 0u);
    return std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start)
               .count() /
           kRounds;
  };
  const double hand = time([&] { return InvokeBodyPrefix("map/1", cursor, "{}"); });
  const double protobuf = time([&] { return ProtobufJson(cursor); });
  std::printf("cursor body: hand-written %.0f ns, MessageToJsonString %.0f ns\n", hand, protobuf);
  EXPECT_LT(hand, protobuf);
}

}  // namespace
}  // namespace eofaas::proxy
