// Tests of the TOML-subset parser: every supported construct, every rejected one (with
// the line number in the message), --set value parsing and the format_table round trip.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <string>

#include "config/toml.hpp"

namespace minipt::toml {
namespace {

using Type = Value::Type;

// Parses `text` expecting a ConfigError whose message starts with "test.toml:<line>: " and
// contains `fragment`.
void expect_parse_error(const std::string& text, int line, const std::string& fragment) {
  SCOPED_TRACE("document:\n" + text);
  try {
    parse(text, "test.toml");
    ADD_FAILURE() << "no error thrown, expected '" << fragment << "'";
  } catch (const ConfigError& error) {
    const std::string message = error.what();
    EXPECT_EQ(message.rfind("test.toml:" + std::to_string(line) + ": ", 0), 0u) << message;
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
  expect_parse_error("a = 1\r\nb = \r\n", 2, "missing value");
}

TEST(TomlErrors, UnterminatedStrings) {
  expect_parse_error("a = 1\nname = \"abc\n", 2, "unterminated string");
  expect_parse_error("a = 1\n\nname = 'abc", 3, "unterminated string");
  expect_parse_error("name = \"ends with escape\\", 1, "unterminated string");
}

TEST(TomlErrors, MissingEqualsOrValue) {
  expect_parse_error("a = 1\nlayers 4\n", 2, "expected '=' after key 'layers'");
  expect_parse_error("[model]\nlayers\n", 2, "expected '=' after key 'layers'");
  expect_parse_error("\n\nlayers =\n", 3, "missing value");
  expect_parse_error("layers = # nothing\n", 1, "missing value");
  expect_parse_error("= 4\n", 1, "missing key before '='");
}

TEST(TomlErrors, BadNumbers) {
  expect_parse_error("x = 1\ny = 12abc\n", 2, "bad number '12abc'");
  expect_parse_error("y = 007\n", 1, "leading zeros");
  expect_parse_error("y = 1__000\n", 1, "'_' must stand between digits");
  expect_parse_error("y = 1000_\n", 1, "'_' must stand between digits");
  expect_parse_error("y = 1.\n", 1, "expected digits after '.'");
  expect_parse_error("y = .5\n", 1, "bad number '.5'");
  expect_parse_error("y = 1e\n", 1, "expected digits in the exponent");
  expect_parse_error("y = 1.2.3\n", 1, "bad number '1.2.3'");
  expect_parse_error("y = 9223372036854775808\n", 1, "out of the range of a 64-bit integer");
  expect_parse_error("y = 1e400\n", 1, "out of the range of a 64-bit float");
  expect_parse_error("y = 0x1F\n", 1, "hexadecimal, octal and binary");
  expect_parse_error("y = 1979-05-27\n", 1, "dates and times are not supported");
  expect_parse_error("y = 07:32:00\n", 1, "dates and times are not supported");
}

TEST(TomlErrors, BareWordsAndBadEscapes) {
  expect_parse_error("a = 1\nmode = odc\n", 2, "strings must be quoted (\"odc\")");
  expect_parse_error("flag = True\n", 1, "strings must be quoted");
  expect_parse_error("s = \"a\\qb\"\n", 1, "unknown escape sequence '\\q'");
  expect_parse_error("s = \"\\u12\"\n", 1, "4 hexadecimal digits");
  expect_parse_error("s = \"\\uD800\"\n", 1, "not a Unicode scalar value");
  expect_parse_error("s = \"tab\x01\"\n", 1, "control character");
  expect_parse_error("x = @\n", 1, "expected a value, found '@'");
}

TEST(TomlErrors, DuplicateKeys) {
  expect_parse_error("[model]\nlayers = 4\nheads = 8\n\n\n\nlayers = 6\n", 7,
                     "model.layers defined twice (lines 2 and 7)");
  expect_parse_error("a.b = 1\na.b = 2\n", 2, "a.b defined twice (lines 1 and 2)");
  expect_parse_error("[model]\nlayers = 4\n[other]\n[model]\n", 4,
                     "table [model] defined twice (lines 1 and 4)");
  expect_parse_error("[a]\nb = 1\n[a.b]\n", 3, "a.b is a value (line 2)");
  expect_parse_error("[a]\nb = 1\n[a.b.c]\n", 3, "a.b is a value (line 2)");
  expect_parse_error("a = 1\na.b = 2\n", 2, "a is a value (line 1)");
  expect_parse_error("[a.b]\nx = 1\n[a]\nb = 2\n", 4, "a.b is a table (line 1)");
  expect_parse_error("a.b = 1\n[a]\n", 2, "table [a] was already defined by dotted keys (line 1)");
  expect_parse_error("[a.b]\nx = 1\n[a]\nb.y = 2\n", 4, "opened by a table header (line 1)");
}

TEST(TomlErrors, GarbageAfterValueOrHeader) {
  expect_parse_error("a = 1\nb = 2 3\n", 2, "unexpected text after value: '3'");
  expect_parse_error("b = \"x\" y\n", 1, "unexpected text after value: 'y'");
  expect_parse_error("b = [1, 2] ]\n", 1, "unexpected text after value: ']'");
  expect_parse_error("a = 1 b = 2\n", 1, "unexpected text after value");
  expect_parse_error("[model] x\n", 1, "unexpected text after table header: 'x'");
  expect_parse_error("[model\nx = 1\n", 1, "expected ']' to close the table header");
  expect_parse_error("[]\n", 1, "expected a key");
  expect_parse_error("[a.]\n", 1, "expected a key");
  expect_parse_error("a..b = 1\n", 1, "expected a key");
}

TEST(TomlErrors, UnsupportedConstructsSaySo) {
  expect_parse_error("a = 1\nmodel = { layers = 4 }\n", 2, "inline tables are not supported");
  expect_parse_error("a = [{ x = 1 }]\n", 1, "inline tables are not supported");
  expect_parse_error("a = 1\n[[steps]]\n", 2, "arrays of tables ([[...]]) are not supported");
  expect_parse_error("\"quoted key\" = 1\n", 1, "quoted keys are not supported");
  expect_parse_error("[model.\"x\"]\n", 1, "quoted keys are not supported");
  expect_parse_error("s = \"\"\"\nabc\"\"\"\n", 1, "multi-line strings");
  expect_parse_error("s = '''abc'''\n", 1, "multi-line strings");
  expect_parse_error("a = [[1, 2], [3]]\n", 1, "nested arrays are not supported");
}

TEST(TomlErrors, BadArrays) {
  expect_parse_error("a = [\n1,\n2\n", 1, "unterminated array");
  expect_parse_error("a = [1 2]\n", 1, "expected ',' or ']' in the array, found '2'");
  expect_parse_error("a = [1,\n\n 'x']\n", 3, "found string after integer");
  expect_parse_error("a = [,]\n", 1, "expected a value in the array");
  expect_parse_error("a = [1,,2]\n", 1, "expected a value in the array");
}

TEST(TomlParseFile, ReadsFileAndNamesItInErrors) {
  const std::string path = ::testing::TempDir() + "minipt_toml_test.toml";
  {
    std::ofstream out(path);
    out << "[model]\nlayers = 4\n\nheads = \"x\n";
  }
  try {
    parse_file(path);
    ADD_FAILURE() << "expected an error";
  } catch (const ConfigError& error) {
    EXPECT_EQ(std::string(error.what()).rfind(path + ":4: unterminated string", 0), 0u)
        << error.what();
  }
  {
    std::ofstream out(path);
    out << "[model]\nlayers = 4\n";
  }
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

TEST(TomlParseValue, TomlSyntaxIsParsed) {
  EXPECT_EQ(parse_value("12", "k").i, 12);
  EXPECT_EQ(parse_value(" -3 ", "k").i, -3);
  EXPECT_DOUBLE_EQ(parse_value("6.5e-3", "k").f, 6.5e-3);
  EXPECT_TRUE(parse_value("true", "k").b);
  EXPECT_EQ(parse_value("false", "k").type, Type::boolean);
  EXPECT_EQ(parse_value("\"a b\"", "k").s, "a b");
  EXPECT_EQ(parse_value("'12'", "k").type, Type::string);
  EXPECT_TRUE(std::isinf(parse_value("inf", "k").f));
  const Value list = parse_value("[1024, 2048]", "k");
  ASSERT_EQ(list.type, Type::array);
  EXPECT_EQ(list.items[1].i, 2048);
  EXPECT_EQ(list.source, "--set");
  EXPECT_EQ(list.line, 0);
}

TEST(TomlParseValue, BareWordsAreStrings) {
  EXPECT_EQ(parse_value("odc", "run.mode").type, Type::string);
  EXPECT_EQ(parse_value("odc", "run.mode").s, "odc");
  EXPECT_EQ(parse_value("  lognormal ", "k").s, "lognormal");
  EXPECT_EQ(parse_value("True", "k").s, "True");
  EXPECT_EQ(parse_value("out/run_1.h5", "k").s, "out/run_1.h5");
  EXPECT_EQ(parse_value("two words", "k").s, "two words");
}

TEST(TomlParseValue, ErrorsNameTheKey) {
  expect_set_error("", "empty value");
  expect_set_error("   ", "empty value");
  expect_set_error("12x", "bad number '12x'");
  expect_set_error("1 2", "unexpected text after value: '2'");
  expect_set_error("\"open", "unterminated string");
  expect_set_error("[1, 2", "unterminated array");
  expect_set_error("{a = 1}", "inline tables are not supported");
  try {
    parse_value("12x", "model.layers");
  } catch (const ConfigError& error) {
    EXPECT_EQ(std::string(error.what()), "model.layers: bad number '12x' (in value '12x')");
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
  expect_format_error({{"x", Value::of_array({Value::of_integer(1), Value::of_string("s")})}}, "x",
                      "found string after integer");
  expect_format_error({{"x", Value::of_array({Value::of_array({})})}}, "x", "nested arrays");
}

}  // namespace
}  // namespace minipt::toml
