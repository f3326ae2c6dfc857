"""Installation of mmeformer.

``pip install -e .`` and ``mim install -e .`` both work. Like the OpenMMLab
packages, the wheel ships ``configs/``, ``tools/`` and ``model-index.yml``
under ``mmeformer/.mim`` so that ``mim train mmeformer <config>`` and
``_base_ = 'mmeformer::<task>/<file>.py'`` find them.
"""
import os
import os.path as osp
import shutil
import sys
import warnings
from setuptools import find_packages, setup

ROOT = osp.dirname(osp.abspath(__file__))
MIM_FILES = ('configs', 'tools', 'model-index.yml')


def readme() -> str:
    with open(osp.join(ROOT, 'README.md'), encoding='utf-8') as f:
        return f.read()


def get_version() -> str:
    scope: dict = {}
    with open(
            osp.join(ROOT, 'mmeformer', 'version.py'), encoding='utf-8') as f:
        exec(compile(f.read(), 'version.py', 'exec'), scope)
    return scope['__version__']


def parse_requirements(name: str) -> list:
    """Read ``requirements/<name>.txt`` without comments and blank lines."""
    with open(osp.join(ROOT, 'requirements', f'{name}.txt')) as f:
        lines = (line.split('#', 1)[0].strip() for line in f)
        return [line for line in lines if line]


def add_mim_extension() -> None:
    """Place configs, tools and the model index under ``mmeformer/.mim``.

    Editable installs link them, so edits show up without reinstalling;
    builds copy them into the wheel.
    """
    if 'develop' in sys.argv or any(
            a.startswith('editable') for a in sys.argv):
        mode = 'symlink'
    elif any(a in sys.argv for a in ('sdist', 'bdist_wheel')) or any(
            a.startswith('bdist') for a in sys.argv):
        mode = 'copy'
    else:
        return

    mim_root = osp.join(ROOT, 'mmeformer', '.mim')
    os.makedirs(mim_root, exist_ok=True)
    for name in MIM_FILES:
        src = osp.join(ROOT, name)
        dst = osp.join(mim_root, name)
        if osp.islink(dst) or osp.isfile(dst):
            os.remove(dst)
        elif osp.isdir(dst):
            shutil.rmtree(dst)
        if not osp.exists(src):
            continue
        if mode == 'symlink':
            try:
                os.symlink(osp.relpath(src, mim_root), dst)
                continue
            except OSError:
                warnings.warn(f'Cannot link {dst}; copying it instead.')
        if osp.isdir(src):
            shutil.copytree(src, dst)
        else:
            shutil.copyfile(src, dst)


if __name__ == '__main__':
    add_mim_extension()
    setup(
        name='mmeformer',
        version=get_version(),
        description='EfficientFormer V1 and V2 for MMPretrain, MMDetection '
        'and MMSegmentation',
        long_description=readme(),
        long_description_content_type='text/markdown',
        keywords='computer vision, efficientformer, openmmlab',
        packages=find_packages(exclude=('configs', 'tools', 'tests')),
        include_package_data=True,
        package_data={'mmeformer': ['.mim/**/*']},
        python_requires='>=3.8',
        license='Apache License 2.0',
        classifiers=[
            'Programming Language :: Python :: 3',
            'Topic :: Scientific/Engineering :: Artificial Intelligence',
        ],
        install_requires=parse_requirements('mminstall') +
        parse_requirements('runtime'),
        extras_require={
            'tests': parse_requirements('tests'),
            'mim': parse_requirements('mminstall'),
            'deploy': parse_requirements('deploy'),
        },
        zip_safe=False)
