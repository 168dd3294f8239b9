// Tests of minipt's TOML layer over toml++: full TOML 1.0 flattened into dotted keys,
// syntax errors as "<file>:<line>:<column>: <message>", the depth and file-size limits,
// --set value parsing, the format_table round trip, and what load_config makes of it.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "config/toml.hpp"
#include "test_files.hpp"

namespace minipt::toml {
namespace {

using Type = Value::Type;

// Parses `text` expecting a ConfigError whose message starts with "test.toml:<line>:<column>: "
// and contains `fragment`.
void expect_parse_error(const std::string& text, int line, const std::string& fragment) {
  SCOPED_TRACE("document:\n" + text.substr(0, 200));
  try {
    parse(text, "test.toml");
    ADD_FAILURE() << "no error thrown, expected '" << fragment << "'";
  } catch (const ConfigError& error) {
    const std::string message = error.what();
    const std::string prefix = "test.toml:" + std::to_string(line) + ":";
    EXPECT_EQ(message.rfind(prefix, 0), 0u) << message;
    const size_t column_end = message.find(": ", prefix.size());
    ASSERT_NE(column_end, std::string::npos) << message;
    const std::string column = message.substr(prefix.size(), column_end - prefix.size());
    EXPECT_TRUE(!column.empty() && column.find_first_not_of("0123456789") == std::string::npos)
        << message;
    EXPECT_NE(message.find(fragment), std::string::npos) << message;
    EXPECT_EQ(error.key(), "");
  }
}

void expect_set_error(const std::string& text, const std::string& fragment) {
  SCOPED_TRACE("--set value: " + text);
  try {
    parse_value(text, "model.layers");
    ADD_FAILURE() << "no error thrown, expected '" << fragment << "'";
  } catch (const ConfigError& error) {
    EXPECT_EQ(error.key(), "model.layers");
    EXPECT_NE(std::string(error.what()).find(fragment), std::string::npos) << error.what();
  }
}

TEST(TomlParse, EmptyDocumentsGiveEmptyTables) {
  EXPECT_TRUE(parse("", "t").empty());
  EXPECT_TRUE(parse("\n\n  \t\n# only a comment\n   # indented comment", "t").empty());
}

TEST(TomlParse, ScalarsOfEveryType) {
  const Table table = parse(R"(
name = "odc run"
path = 'C:\temp\x'
layers = 24
negative = -17
positive = +5
big = 1_000_000
rate = 6.5e-3
ratio = 0.25
mega = 1e6
capital = 2E+2
half = -0.5
on = true
off = false
)",
                            "t");
  ASSERT_EQ(table.size(), 13u);
  EXPECT_EQ(table.at("name").type, Type::string);
  EXPECT_EQ(table.at("name").s, "odc run");
  EXPECT_EQ(table.at("path").s, "C:\\temp\\x");  // literal strings keep backslashes
  EXPECT_EQ(table.at("layers").type, Type::integer);
  EXPECT_EQ(table.at("layers").i, 24);
  EXPECT_EQ(table.at("negative").i, -17);
  EXPECT_EQ(table.at("positive").i, 5);
  EXPECT_EQ(table.at("big").i, 1000000);
  EXPECT_EQ(table.at("rate").type, Type::floating);
  EXPECT_DOUBLE_EQ(table.at("rate").f, 6.5e-3);
  EXPECT_DOUBLE_EQ(table.at("ratio").f, 0.25);
  EXPECT_EQ(table.at("mega").type, Type::floating);
  EXPECT_DOUBLE_EQ(table.at("mega").f, 1e6);
  EXPECT_DOUBLE_EQ(table.at("capital").f, 200.0);
  EXPECT_DOUBLE_EQ(table.at("half").f, -0.5);
  EXPECT_EQ(table.at("on").type, Type::boolean);
  EXPECT_TRUE(table.at("on").b);
  EXPECT_FALSE(table.at("off").b);
}

TEST(TomlParse, IntegerLimitsAndSpecialFloats) {
  const Table table = parse(
      "max = 9223372036854775807\nmin = -9223372036854775808\nzero = 0\n"
      "up = inf\ndown = -inf\nnot = nan\ngrouped = 1_0.2_5\n",
      "t");
  EXPECT_EQ(table.at("max").i, std::numeric_limits<int64_t>::max());
  EXPECT_EQ(table.at("min").i, std::numeric_limits<int64_t>::min());
  EXPECT_EQ(table.at("zero").i, 0);
  EXPECT_TRUE(std::isinf(table.at("up").f) && table.at("up").f > 0);
  EXPECT_TRUE(std::isinf(table.at("down").f) && table.at("down").f < 0);
  EXPECT_TRUE(std::isnan(table.at("not").f));
  EXPECT_DOUBLE_EQ(table.at("grouped").f, 10.25);
}

TEST(TomlParse, StringEscapes) {
  const Table table = parse(
      R"(s = "quote \" backslash \\ tab \t newline \n return \r bs \b ff \f e-acute \u00E9 snowman \u2603 emoji \U0001F600")",
      "t");
  EXPECT_EQ(table.at("s").s,
            "quote \" backslash \\ tab \t newline \n return \r bs \b ff \f e-acute \xC3\xA9 "
            "snowman \xE2\x98\x83 emoji \xF0\x9F\x98\x80");
  const Table hash = parse("s = \"# not a comment\" # a comment\nt = '#x'\n", "t");
  EXPECT_EQ(hash.at("s").s, "# not a comment");
  EXPECT_EQ(hash.at("t").s, "#x");
  EXPECT_EQ(parse("empty = \"\"\nalso = ''\n", "t").at("also").s, "");
}

TEST(TomlParse, TablesAndDottedKeysAreFlattened) {
  const Table table = parse(R"(
seed = 7            # root key, before any header

[model]
layers = 4
attention.heads = 8   # dotted key inside a table
attention . kv_heads = 2

[workload.lengths]
distribution = "lognormal"

[ run ]
mode = "fsdp"
)",
                            "t");
  ASSERT_EQ(table.size(), 6u);
  EXPECT_EQ(table.at("seed").i, 7);
  EXPECT_EQ(table.at("model.layers").i, 4);
  EXPECT_EQ(table.at("model.attention.heads").i, 8);
  EXPECT_EQ(table.at("model.attention.kv_heads").i, 2);
  EXPECT_EQ(table.at("workload.lengths.distribution").s, "lognormal");
  EXPECT_EQ(table.at("run.mode").s, "fsdp");
}

TEST(TomlParse, RootDottedKeysAndSubtablesOfDottedTables) {
  const Table table = parse(
      "a.b.c = 1\na.b.d = 2\n[fruit]\napple.color = 'red'\n[fruit.apple.texture]\nsmooth = true\n",
      "t");
  EXPECT_EQ(table.at("a.b.c").i, 1);
  EXPECT_EQ(table.at("a.b.d").i, 2);
  EXPECT_EQ(table.at("fruit.apple.color").s, "red");
  EXPECT_TRUE(table.at("fruit.apple.texture.smooth").b);
  // A table implied by a deeper header may get its own header later.
  const Table late = parse("[x.y]\nz = 1\n[x]\nw = 2\n", "t");
  EXPECT_EQ(late.at("x.y.z").i, 1);
  EXPECT_EQ(late.at("x.w").i, 2);
}

TEST(TomlParse, KeysMayBeDigitsDashesAndUnderscores) {
  const Table table = parse("[peak-rates]\nH100_bf16 = 989.5\n2 = 'two'\n", "t");
  EXPECT_DOUBLE_EQ(table.at("peak-rates.H100_bf16").f, 989.5);
  EXPECT_EQ(table.at("peak-rates.2").s, "two");
}

TEST(TomlParse, ArraysSingleAndMultiLine) {
  const Table table = parse(R"(
ints = [1, 2, 3]
empty = []
strings = ["a", 'b']
numbers = [1, 2.5]
multi = [
  1024,   # first
  2048,
  # a comment line
  4096,   # trailing comma next
]
flags = [ true , false ]
)",
                            "t");
  const Value& ints = table.at("ints");
  ASSERT_EQ(ints.type, Type::array);
  ASSERT_EQ(ints.items.size(), 3u);
  EXPECT_EQ(ints.items[2].i, 3);
  EXPECT_TRUE(table.at("empty").items.empty());
  EXPECT_EQ(table.at("strings").items[1].s, "b");
  EXPECT_EQ(table.at("numbers").items[0].type, Type::integer);
  EXPECT_EQ(table.at("numbers").items[1].type, Type::floating);
  const Value& multi = table.at("multi");
  ASSERT_EQ(multi.items.size(), 3u);
  EXPECT_EQ(multi.items[0].i, 1024);
  EXPECT_EQ(multi.items[2].i, 4096);
  EXPECT_EQ(multi.line, 6);           // the key's line
  EXPECT_EQ(multi.items[0].line, 7);  // each item's own line
  EXPECT_EQ(multi.items[2].line, 10);
  EXPECT_FALSE(table.at("flags").items[1].b);
}

TEST(TomlParse, ValuesRecordLineAndSource) {
  const Table table = parse("# header comment\n\n[model]\nlayers = 4\n", "inputs/m.toml");
  EXPECT_EQ(table.at("model.layers").line, 4);
  EXPECT_EQ(table.at("model.layers").source, "inputs/m.toml");
}

TEST(TomlParse, WindowsLineEndingsAndByteOrderMark) {
  const Table table = parse("\xEF\xBB\xBF[a]\r\nx = 1\r\ny = [\r\n 2,\r\n]\r\n", "t");
  EXPECT_EQ(table.at("a.x").i, 1);
  EXPECT_EQ(table.at("a.y").items[0].i, 2);
  expect_parse_error("a = 1\r\nb = \r\n", 2, "expected value");
}

TEST(TomlErrors, MessageIsFileLineColumnAndToml) {
  try {
    parse("a = 1\nlayers 4\n", "test.toml");
    ADD_FAILURE() << "expected an error";
  } catch (const ConfigError& error) {
    EXPECT_EQ(std::string(error.what()),
              "test.toml:2:8: Error while parsing key-value pair: expected '=', saw '4'");
  }
}

TEST(TomlErrors, UnterminatedStrings) {
  expect_parse_error("a = 1\nname = \"abc\n", 2, "Error while parsing string");
  expect_parse_error("a = 1\n\nname = 'abc", 3, "end-of-file");
  expect_parse_error("name = \"ends with escape\\", 1, "end-of-file");
}

TEST(TomlErrors, MissingEqualsOrValue) {
  expect_parse_error("a = 1\nlayers 4\n", 2, "expected '=', saw '4'");
  expect_parse_error("[model]\nlayers\n", 2, "expected '='");
  expect_parse_error("\n\nlayers =\n", 3, "expected value");
  expect_parse_error("layers = # nothing\n", 1, "expected value, saw '#'");
  expect_parse_error("= 4\n", 1, "saw '='");
}

TEST(TomlErrors, BadNumbers) {
  expect_parse_error("x = 1\ny = 12abc\n", 2, "expected digit, saw 'a'");
  expect_parse_error("y = 007\n", 1, "leading zeroes are prohibited");
  expect_parse_error("y = 1__000\n", 1, "underscores may only follow digits");
  expect_parse_error("y = 1000_\n", 1, "underscores must be followed by digits");
  expect_parse_error("y = 1.\n", 1, "expected decimal digit");
  expect_parse_error("y = .5\n", 1, "expected decimal digit, saw '.'");
  expect_parse_error("y = 1e\n", 1, "expected decimal digit");
  expect_parse_error("y = 1.2.3\n", 1, "saw '.'");
  expect_parse_error("y = 9223372036854775808\n", 1, "not representable in 64 bits");
  expect_parse_error("y = 1e400\n", 1, "'1e400' could not be interpreted");
  expect_parse_error("y = 0xG1\n", 1, "Error while parsing");
  expect_parse_error("y = 1979-13-27\n", 1, "Error while parsing date");
}

TEST(TomlErrors, BareWordsAndBadEscapes) {
  expect_parse_error("a = 1\nmode = odc\n", 2, "could not determine value type");
  expect_parse_error("flag = True\n", 1, "expected 'true'");
  expect_parse_error("s = \"a\\qb\"\n", 1, "unknown escape sequence '\\q'");
  expect_parse_error("s = \"\\u12\"\n", 1, "expected hex digit");
  expect_parse_error("s = \"\\uD800\"\n", 1, "unicode surrogates");
  expect_parse_error("s = \"tab\x01\"\n", 1, "unescaped control characters");
  expect_parse_error("x = @\n", 1, "could not determine value type");
}

TEST(TomlErrors, DuplicateKeys) {
  expect_parse_error("[model]\nlayers = 4\nheads = 8\n\n\n\nlayers = 6\n", 7,
                     "cannot redefine existing integer 'layers'");
  expect_parse_error("a.b = 1\na.b = 2\n", 2, "cannot redefine existing integer 'a.b'");
  expect_parse_error("[model]\nlayers = 4\n[other]\n[model]\n", 4,
                     "cannot redefine existing table 'model'");
  expect_parse_error("[a]\nb = 1\n[a.b]\n", 3, "cannot redefine existing integer 'a.b' as table");
  expect_parse_error("[a]\nb = 1\n[a.b.c]\n", 3, "cannot redefine existing integer");
  expect_parse_error("a = 1\na.b = 2\n", 2, "cannot redefine existing integer");
  expect_parse_error("[a.b]\nx = 1\n[a]\nb = 2\n", 4, "cannot redefine existing table 'b'");
  expect_parse_error("a.b = 1\n[a]\n", 2, "cannot redefine existing table 'a'");
  expect_parse_error("[a.b]\nx = 1\n[a]\nb.y = 2\n", 4, "cannot redefine existing table");
  // An inline table is complete: dotted keys cannot add to it.
  expect_parse_error("m = {a = 1}\nm.b = 2\n", 2, "cannot redefine existing table");
}

TEST(TomlErrors, GarbageAfterValueOrHeader) {
  expect_parse_error("a = 1\nb = 2 3\n", 2, "expected a comment or whitespace, saw '3'");
  expect_parse_error("b = \"x\" y\n", 1, "saw 'y'");
  expect_parse_error("b = [1, 2] ]\n", 1, "saw ']'");
  expect_parse_error("a = 1 b = 2\n", 1, "expected a comment or whitespace");
  expect_parse_error("[model] x\n", 1, "Error while parsing table header");
  expect_parse_error("[model\nx = 1\n", 1, "expected ']'");
  expect_parse_error("[]\n", 1, "blank bare keys");
  expect_parse_error("[a.]\n", 1, "expected bare key starting character");
  expect_parse_error("a..b = 1\n", 1, "expected bare key starting character");
}

TEST(TomlErrors, BadArrays) {
  expect_parse_error("a = [\n1,\n2\n", 3, "Error while parsing array: encountered end-of-file");
  expect_parse_error("a = [1 2]\n", 1, "expected comma or closing ']', saw '2'");
  expect_parse_error("a = [,]\n", 1, "expected value or closing ']'");
  expect_parse_error("a = [1,,2]\n", 1, "expected value or closing ']'");
}

TEST(TomlErrors, DeepNestingIsAnErrorNotACrash) {
  const int deep = 100000;
  // Arrays and inline tables: toml++'s own limit (TOML_MAX_NESTED_VALUES, 256).
  expect_parse_error("a = " + std::string(deep, '[') + std::string(deep, ']') + "\n", 1,
                     "exceeded maximum nested value depth of 256");
  std::string tables = "a = ";
  for (int k = 0; k < deep; ++k) tables += "{b = ";
  tables += "1" + std::string(deep, '}') + "\n";
  expect_parse_error(tables, 1, "exceeded maximum nested value depth");
  // Dotted keys and table headers (toml++ has no limit there): ours, kMaxKeyDots a line.
  std::string parts;
  for (int k = 0; k < deep; ++k) parts += "a.";
  expect_parse_error("x = 1\n" + parts + "b = 1\n", 2, "nests more than 128 tables deep");
  expect_parse_error("[" + parts + "b]\n", 1, "nests more than 128 tables deep");
  expect_parse_error("[[" + parts + "b]]\n", 1, "nests more than 128 tables deep");
  expect_parse_error("t = {" + parts + "b = 1}\n", 1, "nests more than 128 tables deep");
  // At the limit, and dots that are not between key parts, are fine.
  std::string at_limit;
  for (int k = 0; k < kMaxKeyDots; ++k) at_limit += "k.";
  EXPECT_EQ(parse(at_limit + "leaf = 1\n", "t").size(), 1u);
  std::string floats = "f = [";
  std::string dotted_text;
  for (int k = 0; k < 1000; ++k) floats += "1.5, ", dotted_text += "a.";
  const Table many_dots = parse(floats + "2.5e3]\ns = \"" + dotted_text + "\"\nm = '''\n" +
                                    dotted_text + "'''\n# " + dotted_text + "\nt = 07:32:00.5\n",
                                "t");
  EXPECT_EQ(many_dots.at("f").items.size(), 1001u);
  EXPECT_EQ(many_dots.at("s").s.size(), 2000u);
  EXPECT_EQ(many_dots.at("m").s, dotted_text);
  EXPECT_EQ(many_dots.at("t").s, "07:32:00.5");
}

// toml++ 3.3 reaches __builtin_unreachable (undefined behaviour) when it asks whether a
// character in U+00A1..U+0499, U+2C5E..U+3057 or U+FB26..U+FEFE is whitespace, which it
// does outside strings and comments and after backslashes in multi-line strings. Each
// document here reached it before minipt checked the text first (found by tests/fuzz).
TEST(TomlErrors, NonAsciiWhereTomlppTestsForWhitespaceIsAnError) {
  expect_parse_error("\xC3\xA9 = 1\n", 1, "U+00E9 outside a string or comment");
  expect_parse_error("a = 1\nb = 1\xC3\xA9\n", 2, "U+00E9 in a number, date or time");
  expect_parse_error("a = [1, 2\xE2\xB1\xA0]\n", 1, "U+2C60 in a number, date or time");
  expect_parse_error("a = 3V01\"\xEF\xBB\xB5#x\"\n", 1, "U+FEF5 in a number, date or time");
  expect_parse_error("a = true \xC3\xA9\n", 1, "U+00E9 outside a string or comment");
  // A date, a space and a digit: toml++ scans on for a time past the character after the
  // digit, a '#' too (the first is the fuzzer's 10M-run find, as the --set path builds it).
  expect_parse_error(
      "v = 0s-------& 0#\xCF\xAB"
      "0=0b00\v",
      1, "U+03EB in a number, date or time");
  expect_parse_error("a = 1979-05-27 0#\xC3\xA9\n", 1, "U+00E9 in a number, date or time");
  expect_parse_error("a = [1979-05-27 7]\xC3\xA9]\n", 1, "U+00E9 in a number, date or time");
  EXPECT_EQ(parse("d = 1979-05-27 07:32:00 # caf\xC3\xA9\n", "t").at("d").type, Type::datetime);
  expect_parse_error("a = \"\"\"\\\xC3\xA9\"\"\"\n", 1, "a backslash followed by U+00E9");
  expect_parse_error("a = \"\\\xC3\xA9\"\n", 1, "a backslash followed by U+00E9");
  expect_parse_error("a = \"\"\"x\\  \xD0\x96\n\"\"\"\n", 1, "a backslash, spaces and U+0416");
  expect_parse_error("a = 1\n\xEF\xBB\xBF", 2, "U+FEFF outside a string or comment");
  // Not UTF-8: a stray continuation byte, an overlong form, a surrogate, a cut sequence.
  expect_parse_error("a = 1\n# \x80\n", 2, "not UTF-8 (byte 0x80)");
  expect_parse_error("a = \"\xC0\xAF\"\n", 1, "not UTF-8 (byte 0xC0)");
  expect_parse_error("a = \"\xED\xA0\x80\"\n", 1, "not UTF-8 (byte 0xED)");
  expect_parse_error("a = \"x\xE2\xB1", 1, "not UTF-8 (byte 0xE2)");
  // Columns count characters, as toml++'s do.
  try {
    parse("s = \"\xC3\xA9\xC3\xA9\" \xC3\xA9\n", "c.toml");
    ADD_FAILURE() << "no error";
  } catch (const ConfigError& error) {
    EXPECT_EQ(std::string(error.what()).rfind("c.toml:1:10: U+00E9", 0), 0u) << error.what();
  }
}

TEST(TomlFull, NonAsciiInStringsAndCommentsIsRead) {
  // The first character after a line-ending backslash is handed to toml++ as an escape.
  const Table table = parse(
      "\xEF\xBB\xBF# caf\xC3\xA9\ns = \"caf\xC3\xA9 \xE3\x80\x80\"\nl = '\xC3\xA9\\'\n"
      "m = \"\"\"\\\n   \xC3\xA9t\xC3\xA9 \\\n\n  \xF0\x9F\x98\x80!\"\"\"\n"
      "\"\xC3\xA9\" = 1\n1.\"\xC3\xA9\" = 2\nt = {1.\"\xD0\x96\" = 3, x = [1, \"\xD0\x96\"]}\n",
      "t");
  EXPECT_EQ(table.at("s").s, "caf\xC3\xA9 \xE3\x80\x80");
  EXPECT_EQ(table.at("l").s, "\xC3\xA9\\");
  EXPECT_EQ(table.at("m").s, "\xC3\xA9t\xC3\xA9 \xF0\x9F\x98\x80!");
  EXPECT_EQ(table.at("\"\xC3\xA9\"").i, 1);
  EXPECT_EQ(table.at("1.\"\xC3\xA9\"").i, 2);
  EXPECT_EQ(table.at("t.1.\"\xD0\x96\"").i, 3);
  EXPECT_EQ(table.at("t.x").items.at(1).s, "\xD0\x96");
  // --set values: a bare word that is not TOML stays a string, whatever its characters.
  EXPECT_EQ(parse_value("caf\xC3\xA9", "run.name").s, "caf\xC3\xA9");
  EXPECT_EQ(parse_value("1\xC3\xA9", "run.name").s, "1\xC3\xA9");
}

TEST(TomlFull, InlineTablesAreFlattened) {
  const Table table = parse(
      "model = {layers = 4, attention = {heads = 8}, mlp.ratio = 2.5}\n[run]\n"
      "opts = { mode = \"odc\" }\n",
      "t");
  ASSERT_EQ(table.size(), 4u);
  EXPECT_EQ(table.at("model.layers").i, 4);
  EXPECT_EQ(table.at("model.attention.heads").i, 8);
  EXPECT_DOUBLE_EQ(table.at("model.mlp.ratio").f, 2.5);
  EXPECT_EQ(table.at("run.opts.mode").s, "odc");
  EXPECT_TRUE(parse("empty = {}\n", "t").empty());
}

TEST(TomlFull, MultiLineStrings) {
  const Table table = parse(
      "basic = \"\"\"\nfirst\nsecond \\\n    joined\"\"\"\nliteral = '''\nC:\\x\n'''\n"
      "quotes = \"\"\"a \"\"quoted\"\" b\"\"\"\"\"\nafter = 1\n",
      "t");
  EXPECT_EQ(table.at("basic").s, "first\nsecond joined");
  EXPECT_EQ(table.at("literal").s, "C:\\x\n");
  EXPECT_EQ(table.at("quotes").s, "a \"\"quoted\"\" b\"\"");
  EXPECT_EQ(table.at("after").line, 9);
}

TEST(TomlFull, QuotedKeysAreStoredAsTomlKeys) {
  const Table table =
      parse("\"quoted key\" = 1\n\"plain\" = 2\n'a.b'.c = 3\n[model.\"x y\"]\nz = 4\n", "t");
  ASSERT_EQ(table.size(), 4u);
  EXPECT_EQ(table.at("\"quoted key\"").i, 1);
  EXPECT_EQ(table.at("plain").i, 2);  // a quoted key that could be bare is stored bare
  EXPECT_EQ(table.at("\"a.b\".c").i, 3);
  EXPECT_EQ(table.at("model.\"x y\".z").i, 4);
  // Distinct TOML keys stay distinct: "a.b" is one part, a.b two.
  const Table both = parse("\"a.b\" = 1\na.b = 2\n", "t");
  EXPECT_EQ(both.at("\"a.b\"").i, 1);
  EXPECT_EQ(both.at("a.b").i, 2);
}

TEST(TomlFull, ArraysOfTablesNestedAndMixedArrays) {
  const Table table = parse(
      "nested = [[1, 2], [\"a\"], []]\nmixed = [1, \"x\", true]\ninline = [{x = 1}, {}]\n"
      "[[steps]]\nname = \"warm\"\nsub.n = 1\n[[steps]]\nname = \"run\"\n",
      "t");
  const Value& nested = table.at("nested");
  ASSERT_EQ(nested.items.size(), 3u);
  EXPECT_EQ(nested.items[0].type, Type::array);
  EXPECT_EQ(nested.items[0].items[1].i, 2);
  EXPECT_EQ(nested.items[1].items[0].s, "a");
  EXPECT_EQ(table.at("mixed").items[1].s, "x");
  const Value& steps = table.at("steps");
  ASSERT_EQ(steps.type, Type::array);
  ASSERT_EQ(steps.items.size(), 2u);
  EXPECT_EQ(steps.items[0].type, Type::table);
  EXPECT_EQ(steps.items[0].type_name(), "table");
  EXPECT_EQ(steps.items[0].keys, (std::vector<std::string>{"name", "sub.n"}));
  EXPECT_EQ(steps.items[0].items[0].s, "warm");
  EXPECT_EQ(steps.items[1].items[0].s, "run");
  EXPECT_EQ(table.at("inline").items[0].to_toml(), "{x = 1}");
  EXPECT_EQ(table.at("inline").items[1].to_toml(), "{}");
}

TEST(TomlFull, OtherIntegerBasesAndDates) {
  const Table table = parse(
      "hex = 0xDEAD_beef\noct = 0o755\nbin = 0b1101\nd = 1979-05-27\nt = 07:32:00\n"
      "dt = 1979-05-27T07:32:00.5-07:00\nlocal = 1979-05-27 07:32:00\n",
      "t");
  EXPECT_EQ(table.at("hex").i, 0xDEADBEEF);
  EXPECT_EQ(table.at("oct").i, 0755);
  EXPECT_EQ(table.at("bin").i, 13);
  EXPECT_EQ(table.at("d").type, Type::datetime);
  EXPECT_EQ(table.at("d").type_name(), "datetime");
  EXPECT_EQ(table.at("d").to_toml(), "1979-05-27");
  EXPECT_EQ(table.at("t").s, "07:32:00");
  EXPECT_EQ(table.at("dt").s, "1979-05-27T07:32:00.5-07:00");
  EXPECT_EQ(table.at("local").s, "1979-05-27T07:32:00");
}

TEST(TomlParseFile, ReadsFileAndNamesItInErrors) {
  const std::string path = test::write_scratch("test.toml", "[model]\nlayers = 4\n\nheads = \"x\n");
  try {
    parse_file(path);
    ADD_FAILURE() << "expected an error";
  } catch (const ConfigError& error) {
    EXPECT_EQ(std::string(error.what()).rfind(path + ":4:", 0), 0u) << error.what();
    EXPECT_NE(std::string(error.what()).find("Error while parsing string"), std::string::npos)
        << error.what();
  }
  test::write_scratch("test.toml", "[model]\nlayers = 4\n");
  const Table table = parse_file(path);
  EXPECT_EQ(table.at("model.layers").i, 4);
  EXPECT_EQ(table.at("model.layers").source, path);
  std::remove(path.c_str());
}

TEST(TomlParseFile, MissingFileAndDirectoryAreReported) {
  const std::string missing = ::testing::TempDir() + "no_such_minipt_config.toml";
  try {
    parse_file(missing);
    ADD_FAILURE() << "expected an error";
  } catch (const ConfigError& error) {
    EXPECT_EQ(std::string(error.what()),
              missing + ": cannot read configuration file (No such file or directory)");
    EXPECT_EQ(error.key(), "");
  }
  try {
    parse_file(::testing::TempDir());
    ADD_FAILURE() << "expected an error";
  } catch (const ConfigError& error) {
    EXPECT_NE(std::string(error.what()).find("cannot read configuration file (Is a directory)"),
              std::string::npos)
        << error.what();
  }
}

TEST(TomlParseFile, OversizedFilesAndDevicesAreRefused) {
  const std::string line = "# " + std::string(1021, 'x') + "\n";  // 1 KiB
  std::string text;
  for (size_t k = 0; k < kMaxFileBytes / line.size(); ++k) text += line;
  const std::string at_limit = test::write_scratch("at_limit.toml", text + "a = 1\n");
  EXPECT_GT(text.size() + 6, kMaxFileBytes);
  try {
    parse_file(at_limit);
    ADD_FAILURE() << "expected an error";
  } catch (const ConfigError& error) {
    EXPECT_EQ(std::string(error.what()),
              at_limit + ": configuration file is larger than 16 MiB (not read further)");
  }
  std::remove(at_limit.c_str());
  text.resize(kMaxFileBytes - 6);
  const std::string fits = test::write_scratch("fits.toml", text + "\na = 1");
  EXPECT_EQ(parse_file(fits).at("a").i, 1);
  std::remove(fits.c_str());
  try {
    parse_file("/dev/zero");
    ADD_FAILURE() << "expected an error";
  } catch (const ConfigError& error) {
    EXPECT_NE(std::string(error.what()).find("/dev/zero: configuration file is not a regular file"),
              std::string::npos)
        << error.what();
  }
}

TEST(TomlParseValue, TomlSyntaxIsParsed) {
  EXPECT_EQ(parse_value("12", "k").i, 12);
  EXPECT_EQ(parse_value(" -3 ", "k").i, -3);
  EXPECT_EQ(parse_value("0x10", "k").i, 16);
  EXPECT_DOUBLE_EQ(parse_value("6.5e-3", "k").f, 6.5e-3);
  EXPECT_TRUE(parse_value("true", "k").b);
  EXPECT_EQ(parse_value("false", "k").type, Type::boolean);
  EXPECT_EQ(parse_value("\"a b\"", "k").s, "a b");
  EXPECT_EQ(parse_value("'12'", "k").type, Type::string);
  EXPECT_TRUE(std::isinf(parse_value("inf", "k").f));
  EXPECT_EQ(parse_value("5 # five", "k").i, 5);
  EXPECT_EQ(parse_value("1979-05-27", "k").type, Type::datetime);
  const Value list = parse_value("[1024, [2048]]", "k");
  ASSERT_EQ(list.type, Type::array);
  EXPECT_EQ(list.items[0].i, 1024);
  EXPECT_EQ(list.items[1].items[0].i, 2048);
  EXPECT_EQ(list.source, "--set");
  EXPECT_EQ(list.line, 0);
  EXPECT_EQ(list.items[1].items[0].source, "--set");
  EXPECT_EQ(list.items[1].items[0].line, 0);
}

TEST(TomlParseValue, TextThatIsNotTomlIsAString) {
  EXPECT_EQ(parse_value("odc", "run.mode").type, Type::string);
  EXPECT_EQ(parse_value("odc", "run.mode").s, "odc");
  EXPECT_EQ(parse_value("  lognormal ", "k").s, "lognormal");
  EXPECT_EQ(parse_value("True", "k").s, "True");
  EXPECT_EQ(parse_value("out/run_1.h5", "k").s, "out/run_1.h5");
  EXPECT_EQ(parse_value("two words", "k").s, "two words");
  EXPECT_EQ(parse_value("./x.h5", "run.out").s, "./x.h5");
  EXPECT_EQ(parse_value("../runs/a.h5", "run.out").s, "../runs/a.h5");
  EXPECT_EQ(parse_value("/abs/a.h5", "run.out").s, "/abs/a.h5");
  EXPECT_EQ(parse_value("12x", "k").s, "12x");
  EXPECT_EQ(parse_value("1 2", "k").s, "1 2");
  EXPECT_EQ(parse_value(".5", "k").s, ".5");
  EXPECT_EQ(parse_value("-", "k").s, "-");
  // Text that would add keys of its own is not one value either.
  EXPECT_EQ(parse_value("1\nx = 2", "k").s, "1\nx = 2");
  EXPECT_EQ(parse_value("odc", "k").source, "--set");
}

TEST(TomlParseValue, ErrorsNameTheKey) {
  expect_set_error("", "empty value");
  expect_set_error("   ", "empty value");
  expect_set_error("\"open", "not a valid TOML value: Error while parsing string");
  expect_set_error("'open", "not a valid TOML value");
  expect_set_error("[1, 2", "Error while parsing array");
  expect_set_error("\"a\" \"b\"", "not a valid TOML value");
  expect_set_error("{a = 1}", "an inline table cannot be set as one value");
  try {
    parse_value("[1, 2", "model.layers");
  } catch (const ConfigError& error) {
    EXPECT_EQ(std::string(error.what()),
              "model.layers: not a valid TOML value: Error while parsing array: encountered "
              "end-of-file (in value '[1, 2')");
  }
}

TEST(TomlValue, TypeNamesAndToToml) {
  EXPECT_EQ(Value::of_string("x").type_name(), "string");
  EXPECT_EQ(Value::of_integer(1).type_name(), "integer");
  EXPECT_EQ(Value::of_float(1).type_name(), "float");
  EXPECT_EQ(Value::of_bool(true).type_name(), "boolean");
  EXPECT_EQ(Value::of_array({}).type_name(), "array");
  EXPECT_EQ(Value::of_string("a\"b\\c\nd\x01").to_toml(), "\"a\\\"b\\\\c\\nd\\u0001\"");
  EXPECT_EQ(Value::of_integer(-42).to_toml(), "-42");
  EXPECT_EQ(Value::of_float(3.0).to_toml(), "3.0");
  EXPECT_EQ(Value::of_float(0.1).to_toml(), "0.1");
  EXPECT_EQ(Value::of_float(-HUGE_VAL).to_toml(), "-inf");
  EXPECT_EQ(Value::of_bool(false).to_toml(), "false");
  EXPECT_EQ(Value::of_array({Value::of_integer(1), Value::of_integer(2)}).to_toml(), "[1, 2]");
  EXPECT_EQ(Value::of_array({}).to_toml(), "[]");
}

TEST(TomlValue, ToTomlReadsBackExactly) {
  const double awkward[] = {0.1,           1.0 / 3.0,  1e-300, 1e300,
                            6.02214076e23, -0.0,       5e-324, std::numeric_limits<double>::max(),
                            1e22,          123456789.0};
  for (const double number : awkward) {
    const Value value = Value::of_float(number);
    const Value back = parse_value(value.to_toml(), "k");
    EXPECT_TRUE(value.same_value(back)) << value.to_toml();
  }
  EXPECT_TRUE(std::isnan(parse_value(Value::of_float(std::nan("")).to_toml(), "k").f));
  const Value text = Value::of_string("tab\tquote\" unicode \xC3\xA9 ctl \x7f");
  EXPECT_TRUE(text.same_value(parse_value(text.to_toml(), "k")));
}

TEST(TomlValue, SameValueComparesContentsOnly) {
  Value a = Value::of_integer(3);
  Value b = Value::of_integer(3);
  b.line = 9;
  b.source = "elsewhere";
  EXPECT_TRUE(a.same_value(b));
  EXPECT_FALSE(a.same_value(Value::of_float(3.0)));
  EXPECT_FALSE(Value::of_float(0.0).same_value(Value::of_float(-0.0)));
  EXPECT_FALSE(Value::of_array({a}).same_value(Value::of_array({a, b})));
  EXPECT_FALSE(Value::of_array({a}).same_value(Value::of_array({Value::of_integer(4)})));
}

TEST(TomlFormat, GroupsByTableSortedAndRoundTrips) {
  Table table;
  table["seed"] = Value::of_integer(7);
  table["model.layers"] = Value::of_integer(24);
  table["model.attention.heads"] = Value::of_integer(16);
  table["model.name"] = Value::of_string("1.5B \"shape\"");
  table["workload.lengths.mean"] = Value::of_float(4096.5);
  table["workload.lengths.sigma"] = Value::of_float(1e-3);
  table["run.mode"] = Value::of_string("odc");
  table["run.overlap"] = Value::of_bool(true);
  table["run.budgets"] = Value::of_array({Value::of_integer(65536), Value::of_integer(131072)});
  table["run.empty"] = Value::of_array({});
  table["a-b.c_d"] = Value::of_integer(-1);

  const std::string text = format_table(table);
  EXPECT_EQ(text,
            "seed = 7\n"
            "\n[a-b]\nc_d = -1\n"
            "\n[model]\nlayers = 24\nname = \"1.5B \\\"shape\\\"\"\n"
            "\n[model.attention]\nheads = 16\n"
            "\n[run]\nbudgets = [65536, 131072]\nempty = []\nmode = \"odc\"\noverlap = true\n"
            "\n[workload.lengths]\nmean = 4096.5\nsigma = 0.001\n");

  const Table back = parse(text, "formatted");
  ASSERT_EQ(back.size(), table.size());
  for (const auto& [key, value] : table) {
    ASSERT_EQ(back.count(key), 1u) << key;
    EXPECT_TRUE(value.same_value(back.at(key))) << key << " = " << value.to_toml();
  }
}

TEST(TomlFormat, ParsedDocumentRoundTrips) {
  const Table original = parse(R"(
top = 'x'
[model]
layers = 4
attention.heads = 8
[model.mlp]
ratio = 2.6666666666666665
[lists]
mixed = [1, 2.5, -inf]
names = ["a", "b\u00e9"]
nested = [[1, "x"], [], [[true]]]
"quoted key"."a.b" = 0x1F
when = 1979-05-27T07:32:00Z
text = """
two
lines"""
[[steps]]
name = "warm"
sub = {n = 1, "x y" = [{}]}
[[steps]]
)",
                               "t");
  const Table back = parse(format_table(original), "t2");
  ASSERT_EQ(back.size(), original.size());
  for (const auto& [key, value] : original) {
    EXPECT_TRUE(value.same_value(back.at(key))) << key;
  }
  EXPECT_EQ(format_table(back), format_table(original));
}

TEST(TomlFormat, RejectsTablesTomlCannotExpress) {
  const auto expect_format_error = [](const Table& table, const std::string& key,
                                      const std::string& fragment) {
    try {
      format_table(table);
      ADD_FAILURE() << "expected an error";
    } catch (const ConfigError& error) {
      EXPECT_EQ(error.key(), key);
      EXPECT_NE(std::string(error.what()).find(fragment), std::string::npos) << error.what();
    }
  };
  expect_format_error({{"a", Value::of_integer(1)}, {"a.b", Value::of_integer(2)}}, "a",
                      "is a value and also a table (a.b)");
  expect_format_error({{"bad key", Value::of_integer(1)}}, "bad key", "not a bare TOML key");
  expect_format_error({{"a..b", Value::of_integer(1)}}, "a..b", "empty part");
  expect_format_error({{"", Value::of_integer(1)}}, "", "empty key");
  expect_format_error({{"\"open.b", Value::of_integer(1)}}, "\"open.b", "not a bare TOML key");
  expect_format_error({{"a.\"b\"c", Value::of_integer(1)}}, "a.\"b\"c", "not a bare TOML key");
  Value table_value;
  table_value.type = Type::table;
  expect_format_error({{"x", table_value}}, "x", "a table value can only stand in an array");
}

TEST(TomlFormat, MixedNestedArraysAndQuotedKeysAreWritten) {
  Table table;
  table["x"] = Value::of_array({Value::of_integer(1), Value::of_string("s")});
  table["y"] = Value::of_array({Value::of_array({}), Value::of_array({Value::of_bool(true)})});
  table["\"a b\".c"] = Value::of_integer(2);
  const std::string text = format_table(table);
  EXPECT_EQ(text, "x = [1, \"s\"]\ny = [[], [true]]\n\n[\"a b\"]\nc = 2\n");
  const Table back = parse(text, "t");
  ASSERT_EQ(back.size(), table.size());
  for (const auto& [key, value] : table) EXPECT_TRUE(value.same_value(back.at(key))) << key;
}

// What load_config makes of it: the config layer takes the flattened keys, and its type
// checks report values no key can take.
Config load_with(const std::string& file_text, const std::vector<std::string>& overrides = {}) {
  return load_config({test::write_scratch("load.toml", file_text)}, overrides);
}

std::string load_error(const std::string& file_text,
                       const std::vector<std::string>& overrides = {}) {
  try {
    load_with(file_text, overrides);
  } catch (const ConfigError& error) {
    return error.what();
  }
  ADD_FAILURE() << "expected a ConfigError";
  return "";
}

TEST(TomlLoadConfig, InlineTablesMultiLineStringsAndQuotedKeys) {
  const Config c = load_with(
      "model = {layers = 3, hidden = 64, heads = 4, kv_heads = 2}\n"
      "[run]\nname = \"\"\"\nmulti-line\"\"\"\n\"steps\" = 0x3\n");
  EXPECT_EQ(c.model.layers, 3);
  EXPECT_EQ(c.model.hidden, 64);
  EXPECT_EQ(c.run.name, "multi-line");
  EXPECT_EQ(c.run.steps, 3);
  // The resolved TOML written into each output file reads back as the same keys.
  const Table resolved = parse(c.resolved_toml, "resolved");
  EXPECT_EQ(resolved.at("model.layers").i, 3);
  EXPECT_EQ(resolved.at("run.name").s, "multi-line");
  EXPECT_EQ(parse(format_table(resolved), "again").size(), resolved.size());
}

TEST(TomlLoadConfig, SetTakesPathsAndBareWordsAsStrings) {
  EXPECT_EQ(load_with("", {"run.out=./x.h5"}).run.out, "./x.h5");
  EXPECT_EQ(load_with("", {"run.out=../runs/a.h5"}).run.out, "../runs/a.h5");
  EXPECT_EQ(load_with("", {"run.mode=odc"}).run.mode, Mode::odc);
  EXPECT_EQ(load_with("", {"run.name=\"quoted\""}).run.name, "quoted");
  EXPECT_EQ(load_with("", {"run.steps=7"}).run.steps, 7);
}

TEST(TomlLoadConfig, MalformedNumbersAndOtherTypesNameTheKey) {
  EXPECT_EQ(load_error("", {"run.steps=abc"}),
            "run.steps: expected an integer, got string \"abc\"");
  EXPECT_EQ(load_error("", {"run.steps=1.5"}), "run.steps: expected an integer, got float 1.5");
  EXPECT_EQ(load_error("", {"optim.lr=1e-3x"}),
            "optim.lr: expected a number, got string \"1e-3x\"");
  EXPECT_EQ(load_error("[run]\nsteps = 1979-05-27\n"),
            "run.steps: expected an integer, got datetime 1979-05-27");
  EXPECT_EQ(load_error("[run]\nname = [[\"a\"]]\n"),
            "run.name: expected a string, got array [[\"a\"]]");
  EXPECT_EQ(load_error("[[run.name]]\nx = 1\n"),
            "run.name: expected a string, got array [{x = 1}]");
  EXPECT_NE(load_error("model = {layrs = 2}\n").find("model.layrs: unknown key"),
            std::string::npos);
  EXPECT_NE(load_error("", {"run.name=\"open"}).find("run.name: not a valid TOML value"),
            std::string::npos);
}

TEST(TomlLoadConfig, WarmupMustLeaveAStepToMeasure) {
  EXPECT_EQ(load_with("", {"run.steps=3", "run.warmup_steps=2"}).run.warmup_steps, 2);
  EXPECT_EQ(load_with("", {"run.steps=1", "run.warmup_steps=0"}).run.warmup_steps, 0);
  EXPECT_EQ(load_error("", {"run.steps=3", "run.warmup_steps=3"}),
            "run.warmup_steps: 3 leaves no step to measure in a run of 3 steps (allowed: 0..2)");
  // The default warm-up (1) does not fit a one-step run.
  EXPECT_NE(load_error("", {"run.steps=1"}).find("run.warmup_steps: 1 leaves no step"),
            std::string::npos);
  EXPECT_NE(load_error("[run]\nsteps = 2\nwarmup_steps = 7\n").find("(allowed: 0..1)"),
            std::string::npos);
}

TEST(TomlLoadConfig, DeepNestingAndEndlessBasesAreConfigErrors) {
  const std::string deep = "[run]\nname = " + std::string(100000, '[') + std::string(100000, ']');
  EXPECT_NE(load_error(deep).find("exceeded maximum nested value depth"), std::string::npos);
  EXPECT_NE(
      load_error("base = [\"/dev/zero\"]\n").find("/dev/zero: configuration file is not a regular"),
      std::string::npos);
}

}  // namespace
}  // namespace minipt::toml
