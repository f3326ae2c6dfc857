from mmeformer.utils import collect_env, verify_environment


def test_collect_env_reports_the_stack():
    env = collect_env()
    for name in ('PyTorch', 'torchvision', 'mmcv', 'mmpretrain', 'mmdet',
                 'mmseg', 'mmeformer'):
        assert name in env
        assert 'unavailable' not in str(env[name]), (name, env[name])


def test_environment_checks_pass():
    results = verify_environment()
    assert [name for name, _, _ in results
            ] == ['torchvision', 'mmcv_ops', 'host_models']
    failed = [(name, detail) for name, passed, detail in results if not passed]
    assert not failed


def test_torch_build_settings_are_left_out():
    details = collect_env()['PyTorch compiling details']
    assert 'PyTorch built with' in details
    assert 'Build settings' not in details
