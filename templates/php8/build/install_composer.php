<?php

/**
 * Installs what a function's composer.json requires into its bundle; the control plane runs it at
 * build time from the bundle root:
 *
 *   php build/install_composer.php function/composer.json function/vendor SCRATCH
 *
 * See composer_requirements.php.
 */

declare(strict_types=1);

require __DIR__ . '/composer_requirements.php';

exit(EofaasBuild\main($argv));
