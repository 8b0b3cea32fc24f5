# frozen_string_literal: true

require_relative "test_helper"

# One parser's answers, alike on both sides (the twin: reference_py/tests/test_arguments.py, the same table).
class ArgumentsTest < Minitest::Test
  def parser
    parser = Hymenoptera::ArgumentParser.new("prog")
    parser.add_argument("spec", metavar: "SPEC.json")
    parser.add_argument("--count", type: Integer, default: 1)
    parser.add_argument("--rate", type: Float)
    parser.add_argument("--many", nargs: "+", choices: %w[a b])
    parser.add_argument("--size", type: Integer, nargs: 4)
    parser.add_argument("--flag", action: :store_true)
    parser
  end

  AFTER = "(the words after '--' are arguments, not options: give options before it)"
  REFUSED = {
    [] => "the following arguments are required: SPEC.json",
    %w[s --count] => "argument --count: expected one argument",
    %w[--count -- s] => "argument --count: expected one argument",
    %w[s --rate -1e3] => "argument --rate: expected one argument",
    %w[s --count x] => "argument --count: invalid int value: 'x' (write a whole number in ASCII digits, such as 25, " \
                       "without separators or leading zeros)",
    %w[s --many] => "argument --many: expected at least one argument",
    %w[s --many a c] => "argument --many: invalid choice: 'c' (choose from 'a', 'b')",
    %w[s --size 1 2 3] => "argument --size: expected 4 arguments",
    %w[s --size=1] => "argument --size: expected 4 arguments",
    %w[s --flag=1] => "argument --flag: ignored explicit argument '1'",
    %w[s --cou 1] => "unrecognized argument '--cou': options are not abbreviated (did you mean --count?)",
    %w[s -c 1] => "unrecognized argument '-c'",
    %w[s t] => "unrecognized argument 't'",
    %w[s --many a --flag b] => "unrecognized argument 'b'",
    %w[s -- --count] => "unrecognized argument '--count' after '--' #{AFTER}",
    %w[-- s t] => "unrecognized argument 't' after '--' #{AFTER}",
    %w[-- --count 1] => "unrecognized argument '1' after '--' #{AFTER}"
  }.freeze
  READ = {
    %w[s] => {spec: "s", count: 1, rate: nil, many: nil, size: nil, flag: false},
    %w[s --] => {spec: "s"},
    %w[-- -s] => {spec: "-s"},
    %w[--count=3 s --rate -1 --flag] => {spec: "s", count: 3, rate: -1.0, flag: true},
    %w[--many a b --size 1 2 3 4 s] => {spec: "s", many: %w[a b], size: [1, 2, 3, 4]},
    %w[s --count 1 --count 2] => {count: 2}
  }.freeze

  def test_a_bad_command_line_is_refused_in_argparse_words
    REFUSED.each do |argv, message|
      error = assert_raises(Hymenoptera::UserError, argv.inspect) { parser.parse_args(argv) }
      assert_equal "#{message}; see prog --help", error.message
    end
  end

  def test_a_good_command_line_is_read
    READ.each do |argv, values|
      assert_equal values, parser.parse_args(argv).slice(*values.keys), argv.inspect
    end
  end

  def test_help_lists_every_argument_with_its_help
    help = parser.tap { |p| p.add_argument("--named", help: "what it names") }.help
    assert help.start_with?("usage: prog [-h] [--count COUNT] [--rate RATE] [--many {a,b} [{a,b} ...]]"), help
    assert_includes help, "[--size SIZE SIZE SIZE SIZE]"
    assert_includes help, "SPEC.json\n"
    assert_match(/^  --named NAMED +what it names$/, help)
  end
end
