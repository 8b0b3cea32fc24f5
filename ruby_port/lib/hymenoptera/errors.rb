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

    # DataLoader worker processes: 0 (load in the main process) to WORKERS_MAX.
    def check_workers(value, option = "--workers")
      unless value.between?(0, WORKERS_MAX)
        raise UserError, "#{option} #{value}: expected a whole number from 0 to #{WORKERS_MAX} " \
                         "(DataLoader worker processes; 0 loads in the main process)"
      end

      value
    end

    # A finite number of at least 0 (learning rates, momentum, gamma).
    def check_rate(value, option)
      raise UserError, "#{option} #{python_float(value)}: expected a finite number of at least 0" unless value.finite? && value >= 0

      value
    end

    def check_seed(value, option = "--seed")
      return value if value.between?(0, SEED_MAX)

      raise UserError, "#{option} #{value}: expected a whole number from 0 to #{SEED_MAX} (LibTorch's seeds are " \
                       "unsigned 64-bit; the val loader uses seed + 1)"
    end

    # argparse's type=int on a command-line word: Integer in base 10, or argparse's message.
    def parse_int(text, option)
      Integer(text.strip.delete("_"), 10)
    rescue ArgumentError
      raise UserError, "argument #{option}: invalid int value: '#{text}'"
    end

    # argparse's type=float on a command-line word: Float, also nan and inf as Python's float() reads them.
    def parse_float(text, option)
      word = text.strip.downcase.delete("_")
      return Float::NAN if word.match?(/\A[-+]?nan\z/)
      return word.start_with?("-") ? -Float::INFINITY : Float::INFINITY if word.match?(/\A[-+]?inf(inity)?\z/)

      Float(word)
    rescue ArgumentError
      raise UserError, "argument #{option}: invalid float value: '#{text}'"
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
