# frozen_string_literal: true

require "json"

module Hymenoptera
  # A problem the user can fix: a missing file, a corrupt image, a wrong option. Modules subclass it
  # for their own (TensorIO::BundleError, Threads::SettingError), so run_cli rescues them all.
  class UserError < StandardError; end

  # Bad input is reported as one line on stderr ("what, where, how to fix") and exit status 2.
  module Errors
    EXIT_USER_ERROR = 2
    SEED_MAX = 2**64 - 2 # LibTorch's seeds are unsigned 64-bit, and the val loader's is seed + 1

    module_function

    def one_line(message)
      message.to_s.split.join(" ")
    end

    # A path for a message: bytes that are not UTF-8 as \xNN (Python and Ruby write them alike).
    def display(path)
      path.to_s.dup.force_encoding(Encoding::UTF_8).scrub { |bytes| bytes.unpack("C*").map { |b| format("\\x%02x", b) }.join }
    end

    # JSON's name for the type of a parsed value (the same word on both sides).
    def json_type(value)
      case value
      when Hash then "object"
      when Array then "array"
      when String then "string"
      when true, false then "boolean"
      when nil then "null"
      else "number"
      end
    end

    WORKERS_MAX = 64

    # A whole number of at least 1 (epochs, batch size, step size).
    def check_count(value, option)
      raise UserError, "#{option} #{value}: expected a whole number of at least 1" if value < 1

      value
    end

    # A whole number from low to high; why: what the bounds come from, said in the error.
    def check_between(value, option, low, high, why)
      raise UserError, "#{option} #{value}: expected a whole number from #{low} to #{high} (#{why})" unless value.between?(low, high)

      value
    end

    # DataLoader worker processes: 0 (load in the main process) to WORKERS_MAX.
    def check_workers(value, option = "--workers")
      check_between(value, option, 0, WORKERS_MAX, "DataLoader worker processes; 0 loads in the main process")
    end

    # A finite number of at least 0 (learning rates, momentum, gamma).
    def check_rate(value, option)
      raise UserError, "#{option} #{python_float(value)}: expected a finite number of at least 0" unless value.finite? && value >= 0

      value
    end

    def check_seed(value, option = "--seed")
      check_between(value, option, 0, SEED_MAX, "LibTorch's seeds are unsigned 64-bit; the val loader uses seed + 1")
    end

    # One grammar for the numbers of every option on both sides (Python's twins in errors.py): ASCII digits
    # only, no separators ("1__0": Ruby read 10, Python refused), no leading zeros ("010" is octal to
    # Integer()), no sign but "-". Whole numbers of at most 100 digits: more than any option's range, and
    # fewer than the 4300 above which Python's int() refuses a word.
    INT_WORD = /\A-?(0|[1-9][0-9]{0,99})\z/
    FLOAT_WORD = /\A(-?((0|[1-9][0-9]*)(\.[0-9]+)?|\.[0-9]+)([eE][-+]?[0-9]+)?|-?(nan|inf|infinity))\z/i

    # A command-line word in a message, alike on both sides (not inspect, which Python's repr does not match).
    def quoted(word)
      "'#{display(word)}'"
    end

    # A whole number in INT_WORD's grammar, or a UserError naming the option and the word.
    def parse_int(word, option)
      unless word.match?(INT_WORD)
        raise UserError, "argument #{option}: invalid int value: #{quoted(word)} (write a whole number in ASCII digits, " \
                         "such as 25, without separators or leading zeros)"
      end

      Integer(word, 10)
    end

    # A number in FLOAT_WORD's grammar (nan and inf included: the ranges refuse them in words of their own).
    def parse_float(word, option)
      unless word.match?(FLOAT_WORD)
        raise UserError, "argument #{option}: invalid float value: #{quoted(word)} (write a number in ASCII digits, " \
                         "such as 0.001 or 1e-4, without separators or leading zeros)"
      end
      return Float::NAN if word.match?(/nan\z/i)
      return word.start_with?("-") ? -Float::INFINITY : Float::INFINITY if word.match?(/inf(inity)?\z/i)

      Float(word)
    end

    # One of choices, spelled in full: a prefix is not completed (Ruby's OptionParser completes one).
    def parse_choice(word, option, choices)
      return word if choices.include?(word)

      raise UserError, "argument #{option}: invalid choice: #{quoted(word)} (choose from #{choices.map { |c| quoted(c) }.join(", ")})"
    end

    # The message for a word no option or argument takes; an abbreviation is told the options it stands for, a
    # word after "--" (the end of the options) that it is not an option there.
    def unrecognized(word, options, after_separator: false)
      if after_separator
        return "unrecognized argument #{quoted(word)} after '--' (the words after '--' are arguments, not options: " \
               "give options before it)"
      end

      name = word.split("=", 2).first
      meant = options.select { |option| name.start_with?("--") && name != "--" && option.start_with?(name) }
      return "unrecognized argument #{quoted(word)}: options are not abbreviated (did you mean #{meant.join(" or ")}?)" if meant.any?

      "unrecognized argument #{quoted(word)}"
    end

    # A float as Python's repr writes it (nan, inf, -1.0, 1e+30), so that messages read alike.
    def python_float(value)
      return "nan" if value.nan?
      return value.positive? ? "inf" : "-inf" if value.infinite?

      value.to_s.sub(/\.0e/, "e")
    end

    # JSON.parse of a file the user gave or generated; missing or malformed, it is a UserError that
    # names it (label, default the path), says what is wrong and ends in how to fix it.
    def read_json(path, fix:, label: path, missing: "not found")
      JSON.parse(File.read(path))
    rescue Errno::ENOENT, Errno::EISDIR
      raise UserError, "#{label} #{missing}; #{fix}"
    rescue JSON::ParserError => e
      raise UserError, "#{label} is not valid JSON (#{one_line(e.message)}); #{fix}"
    end

    # Runs a command-line entry point; a user's problem (a UserError, or what the system reports about a
    # file: not found, no permission, disk full, with its path) becomes one line and exit 2, never a backtrace.
    def run_cli(program = File.basename($PROGRAM_NAME))
      yield
    rescue UserError, SystemCallError => e
      warn "#{program}: error: #{one_line(e.message)}"
      exit EXIT_USER_ERROR
    rescue Interrupt
      warn "#{program}: interrupted"
      exit 130
    end
  end
end
