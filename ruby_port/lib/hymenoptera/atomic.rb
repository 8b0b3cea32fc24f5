# frozen_string_literal: true

require "fileutils"
require "securerandom"
require_relative "../pytorch_parity/lock"

module Hymenoptera
  # Write-then-rename: a file is written into a temporary .NAME.<12 hex>.tmp beside it and renamed into
  # place, so a reader sees the old content or the whole new content, never a half, and a killed run leaves
  # only a temporary that the next claim of the output tidies by its name (leftover_pattern;
  # output_claim.rb). Mirrors reference_py/atomic.py.
  module Atomic
    module_function

    # The temporary names made for target name: .NAME.<12 hex>.tmp (kind "tmp") and .NAME.<12 hex>.old.
    def leftover_pattern(name, kind)
      /\A\.#{Regexp.escape(name)}\.[0-9a-f]{12}\.#{kind}\z/
    end

    # Yields a new .NAME.<12 hex>.tmp beside target to make (the mode a plain open/mkdir gives); its path.
    def make_temporary(target)
      loop do
        path = File.join(File.dirname(target), ".#{File.basename(target)}.#{SecureRandom.hex(6)}.tmp")
        begin
          yield path
          return path
        rescue Errno::EEXIST
          next
        end
      end
    end

    # Yields a temporary path beside target; renames it onto target only if the block succeeds.
    def atomic_path(target)
      FileUtils.mkdir_p(File.dirname(target))
      tmp = nil
      begin
        PytorchParity::Lock.signals_held do
          tmp = make_temporary(target) { |path| File.open(path, File::WRONLY | File::CREAT | File::EXCL, 0o666, &:close) }
        end
        yield tmp
        File.rename(tmp, target)
      ensure
        FileUtils.rm_f(tmp) if tmp
      end
    end

    def write_text(target, text)
      atomic_path(target) { |tmp| File.write(tmp, text) }
    end
  end
end
