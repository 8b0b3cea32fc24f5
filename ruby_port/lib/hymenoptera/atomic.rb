# frozen_string_literal: true

require "fileutils"
require "securerandom"

module Hymenoptera
  # Write files so that a reader sees the old content or the whole new content, never a half.
  module Atomic
    module_function

    # Yields a temporary path beside target; renames it onto target only if the block succeeds.
    def path(target)
      FileUtils.mkdir_p(File.dirname(target))
      tmp = File.join(File.dirname(target), ".#{File.basename(target)}.#{SecureRandom.hex(6)}.tmp")
      begin
        yield tmp
        File.rename(tmp, target)
      ensure
        FileUtils.rm_f(tmp)
      end
    end

    def write(target, data)
      path(target) { |tmp| File.binwrite(tmp, data) }
    end

    # Yields a temporary directory beside target; it replaces target only if the block succeeds.
    def dir(target)
      FileUtils.mkdir_p(File.dirname(target))
      tmp = File.join(File.dirname(target), ".#{File.basename(target)}.#{SecureRandom.hex(6)}.tmp")
      FileUtils.mkdir_p(tmp)
      begin
        yield tmp
        if File.exist?(target)
          old = File.join(File.dirname(target), ".#{File.basename(target)}.old")
          FileUtils.rm_rf(old)
          File.rename(target, old)
          File.rename(tmp, target)
          FileUtils.rm_rf(old)
        else
          File.rename(tmp, target)
        end
      ensure
        FileUtils.rm_rf(tmp)
      end
    end
  end
end
