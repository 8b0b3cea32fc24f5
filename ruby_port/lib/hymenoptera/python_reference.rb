# frozen_string_literal: true

module Hymenoptera
  # Running a reference_py/ command line, for what only the Python side makes: net.pth (pretrained.py)
  # and the generated stand-in images. Uses the interpreter that has torch: .venv/bin/python, else
  # Debian's /usr/bin/python3 (the first `python` on PATH may be another one).
  module PythonReference
    ROOT = File.expand_path("../../..", __dir__)
    STANDIN_DIR = File.join(ROOT, "data", "hymenoptera_standin") # the data dir when none is given
    INTERPRETERS = [File.join(ROOT, ".venv/bin/python"), "/usr/bin/python3"].freeze

    module_function

    def interpreter
      INTERPRETERS.find { |path| File.executable?(path) } or
        raise UserError, "no Python with torch found (looked for #{INTERPRETERS.join(", ")}); run bin/setup"
    end

    # Runs reference_py/SCRIPT with args; everything it prints goes to our stderr (stdout is the log).
    def run(script, *args)
      execute([interpreter, File.join(ROOT, "reference_py", script), *args.map(&:to_s)])
    end

    # Runs a line of Python with the repository root importable (to call a reference_py function).
    def run_python(code)
      execute([interpreter, "-c", "import sys; sys.path.insert(0, #{ROOT.inspect}); #{code}"])
    end

    def execute(command)
      return if system(*command, out: $stderr)

      raise UserError, "the Python reference failed (#{$?.exitstatus ? "exit #{$?.exitstatus}" : "not run"}): " \
                       "#{command.join(" ")}; see its message above"
    end
  end
end
