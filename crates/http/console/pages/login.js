// The login page: a user name and password posted to /api/v1/login, which
// answers with an HttpOnly session cookie the browser sends from then on.
// Shown when the admin API answers 401 (anonymous access is off for this
// client); afterwards the console goes back to where it was.

import { api } from '../api.js';
import { h, replace } from '../dom.js';

export function login(view) {
  const username = h('input', { name: 'username', autocomplete: 'username', required: true });
  const password = h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const error = h('div', { class: 'error', role: 'alert', dataset: { loginError: '' } });
  const submit = h('button', { class: 'button primary', type: 'submit' }, 'Log in');
  const form = h('form', {
    onsubmit: async (event) => {
      event.preventDefault();
      submit.disabled = true;
      replace(error);
      try {
        await api('/login', { method: 'POST', body: { username: username.value, password: password.value } });
        password.value = '';
        window.dispatchEvent(new CustomEvent('conveyor:logged-in'));
      } catch (failure) {
        replace(error, failure.status === 401 ? 'Wrong user name or password.' : failure.message);
      } finally {
        submit.disabled = false;
      }
    },
  },
  h('label', null, 'User', username),
  h('label', null, 'Password', password),
  error,
  submit);
  replace(view, h('div', { class: 'login panel' }, h('h1', null, 'Log in to Conveyor'), form));
  username.focus();
  return {};
}
