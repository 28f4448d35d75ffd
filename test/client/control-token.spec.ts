import { takeControlToken } from '../../client/app/core/socket.service';

describe('takeControlToken', () => {
  beforeEach(() => {
    sessionStorage.clear();
    history.replaceState(null, '', '/');
  });

  it('is undefined when the page was opened without a token', () => {
    expect(takeControlToken()).toBeUndefined();
  });

  it('takes the token from the fragment and removes it from the address bar', () => {
    history.replaceState(null, '', '/?view=compact#token=s3cret-token');
    expect(takeControlToken()).toBe('s3cret-token');
    expect(location.hash).toBe('');
    expect(location.search).toBe('?view=compact');
  });

  it('remembers the token for this tab, so a reload keeps control', () => {
    history.replaceState(null, '', '/#token=s3cret-token');
    takeControlToken();
    expect(takeControlToken()).toBe('s3cret-token');
  });
});
